"""`interp serve`: load a model once and open a local lab page over it (interp.serve)."""

from __future__ import annotations

import ipaddress
import socket

import click

from cli.common import model_options


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the model loads, so a taken port is one sentence at once."""
    from interp.errors import InterpError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family)
    except OSError as exc:
        reason = "is already in use" if exc.errno in (98, 48, 10048) else f"cannot be bound ({exc.strerror or exc})"
        raise InterpError(f"Port {port} on {host} {reason}; choose another with --port.") from None


@click.command()
@model_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0: any free one).")
@click.option("--token", default=None, envvar="INTERP_SERVE_TOKEN",
              help="Secret every API call must send (required off loopback; also read from INTERP_SERVE_TOKEN).")
@click.option("--max-tokens", type=click.IntRange(8, 8192), default=256, show_default=True,
              help="Longest prompt accepted (tokens).")
@click.option("--stats-tokens", type=click.IntRange(100), default=None,
              help="Tokens of sampled text for the edit key statistics (default 4000, cached).")
@click.option("--max-seconds", type=click.FloatRange(1, 86400), default=600, show_default=True,
              help="A trace or edit still running after this long stops at its next step (the model is free again).")
def serve(model, device, dtype, host, port, token, max_tokens, stats_tokens, max_seconds):
    """Open a local lab page: predict, look at attention, trace and edit facts live.

    \b
    Example:
      interp serve --model smollm2-135m --port 8765
    """
    from interp.errors import InterpError

    if not is_loopback(host) and not token:
        raise InterpError(f"Listening on {host} lets other machines reach the lab; give --token SECRET (every API call "
                          "must then send it).")
    if token is not None and len(token) < 8:
        raise InterpError("The --token is too short; use at least 8 characters.")
    from interp.model.registry import weights_source

    # an unknown --model and a taken port are refused before torch and the web stack are imported
    weights_source(model, locate=False)
    sock = _bind(host, port)
    from interp.model.device import resolve_device

    resolve_device(device)  # a bad or missing device is one sentence before the web stack and the model load
    try:
        import uvicorn

        from interp.serve.app import LOOPBACK_HOSTS, create_app
    except ImportError as exc:
        raise InterpError(f"interp serve needs FastAPI and uvicorn ({exc.name} is missing): "
                          "pip install 'interp[serve]'.") from None
    from interp.analysis.rome import StatsParams
    from interp.model.load import load_model
    from interp.serve.lab import Lab, Limits

    click.echo(f"Loading {model}...", err=True)
    m = load_model(model, dtype=dtype, device=device)
    limits = Limits(max_prompt_tokens=max_tokens, max_task_seconds=max_seconds)
    lab = Lab(m, limits, StatsParams(n_tokens=stats_tokens) if stats_tokens else None)
    app = create_app(lab, token=token, allowed_hosts=LOOPBACK_HOSTS if is_loopback(host) and not token else None)
    shown = sock.getsockname()[1]
    name = f"[{host.strip('[]')}]" if ":" in host else host
    url = f"http://{name}:{shown}/" + (f"#token={token}" if token else "")
    dtype_name = str(m.dtype).replace("torch.", "")
    click.echo(f"interp lab: {m.cfg.name} on {m.device} ({dtype_name}) at {url}  (Ctrl-C stops it)")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    server.run(sockets=[sock])
