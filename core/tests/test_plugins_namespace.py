"""``from agentsession.plugins import X`` (VideoSDK 1.0's provider namespace) resolves provider classes through the
installed plugins: the ``agentsession_exports`` hook, or a plugin package's ``__all__``; a provider whose
distribution is missing is an ``ImportError`` naming what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_plugins import _install

from agentsession import plugins


def test_installed_plugins_provide_videosdk_s_names() -> None:
    import agentsession_openai
    import agentsession_silero
    from agentsession.plugins import OpenAIRealtime, SileroVAD

    assert OpenAIRealtime is agentsession_openai.OpenAIRealtime  # the package's __all__
    assert SileroVAD is agentsession_silero.SileroVAD
    assert "OpenAITTS" in dir(plugins)


def test_a_missing_distribution_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(plugins.PROVIDERS, "AcmeTTS", "agentsession-acme")
    with pytest.raises(ImportError, match=r"AcmeTTS is in the agentsession-acme package, which is not installed: "
                                          r"pip install agentsession-acme"):
        from agentsession.plugins import AcmeTTS  # noqa: F401
    monkeypatch.setitem(plugins.PROVIDERS, "OpenAIVoiceClone", "agentsession-openai")
    with pytest.raises(ImportError, match="agentsession-openai is installed but does not provide OpenAIVoiceClone"):
        from agentsession.plugins import OpenAIVoiceClone  # noqa: F401
    with pytest.raises(ImportError, match="cannot import name 'NoSuchProvider'"):
        from agentsession.plugins import NoSuchProvider  # noqa: F401
    assert plugins.PROVIDERS["DeepgramSTT"] == "agentsession-deepgram"
    assert plugins.PROVIDERS["GeminiRealtime"] == plugins.PROVIDERS["GoogleLLM"] == "agentsession-gemini"


def test_a_plugin_declares_its_exports_with_the_hook(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install(site, "exports-plugin")
    code = (
        "from agentsession.plugins import FixtureTTS, FixtureAlias\n"
        "import agentsession_exports_plugin as p\n"
        "assert FixtureTTS is FixtureAlias is p.FixtureTTS\n"
        "try:\n"
        "    from agentsession.plugins import Internal\n"
        "except ImportError:\n"
        "    print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
