"""The ``daskgrad`` command: run | validate | demo | plot | --version. Wiring only.

Exit status: 0 done; 2 a bad config or usage (one line naming the file, the key and the
problem, no traceback); 1 a failure while running (the output stays resumable); 130 stopped
with Ctrl-C (also resumable).

Examples
--------
>>> from click.testing import CliRunner
>>> CliRunner().invoke(main, ["--version"]).output.startswith("daskgrad, version ")
True
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import click

import daskgrad
from daskgrad.batch.config import ConfigError, RunConfig, load_config
from daskgrad.batch.preflight import check_paths

RESUME_HINT = "resume with: daskgrad run {config} --set output.mode=resume"


def _fail_config(err: Exception) -> None:
    click.echo(str(err).splitlines()[0] if str(err) else type(err).__name__, err=True)
    sys.exit(2)


def _load(config: str, overrides: tuple[str, ...]) -> RunConfig:
    try:
        return load_config(config, overrides)
    except ConfigError as err:
        _fail_config(err)
        raise  # unreachable


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig, but the handler itself filters too:
        # distributed sets its own loggers to INFO, and their records reach the root handler
        # whatever the root level is, so without -v every cluster start would print INFO lines.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler.setLevel(level)
        root.addHandler(handler)
        root.setLevel(level)
    logging.getLogger("daskgrad").setLevel(level)
    # Storage clients' debug lines print every request's headers, a session token among them.
    for name in ("botocore", "aiobotocore", "s3fs", "gcsfs", "adlfs", "azure"):
        logging.getLogger(name).setLevel(max(level, logging.INFO))


set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one config key by its dotted path, e.g. --set output.path=/scratch/g.zarr.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(daskgrad.__version__, "--version", prog_name="daskgrad")
def main() -> None:
    """daskgrad: numpy.gradient, bit for bit, on arrays far larger than memory."""
    # zarr warns on every consolidation that v3 has no consolidated metadata in its spec yet;
    # daskgrad consolidates on purpose (once, last), so the warning only adds noise here.
    warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")


@main.command()
@click.argument("config", type=click.Path(dir_okay=True))
@set_option
@click.option("--verify", is_flag=True, help="On resume, decode every chunk already written.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option(
    "--report",
    "report",
    default=None,
    type=click.Path(dir_okay=False),
    metavar="HTML",
    help="Save distributed's performance report (task stream, worker profiles, bandwidth).",
)
def run(
    config: str,
    overrides: tuple[str, ...],
    verify: bool,
    no_progress: bool,
    verbose: int,
    report: str | None,
) -> None:
    """Run the batch job described by CONFIG (a YAML file)."""
    _setup_logging(verbose)
    cfg = _load(config, overrides)
    if report is not None:
        _check_report(report, cfg)
    _run(cfg, config, verify=verify, progress=not no_progress, report=report)


def _check_report(report: str, cfg: RunConfig) -> None:
    """A report needs a distributed scheduler and a place to go; say so before anything runs."""
    if cfg.cluster.kind == "threads":
        click.echo(
            f"--report {report}: a performance report comes from a distributed scheduler; "
            "cluster.kind is 'threads' (use local, address or a job queue)",
            err=True,
        )
        sys.exit(2)
    try:
        import bokeh  # noqa: F401  (distributed draws the report with it)
    except ImportError:
        click.echo(
            f"--report {report}: the report needs bokeh: pip install 'daskgrad[diagnostics]'",
            err=True,
        )
        sys.exit(2)
    parent = os.path.dirname(os.path.abspath(report))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        click.echo(f"--report {report}: cannot write into {parent!r}", err=True)
        sys.exit(2)


def _run(
    cfg: RunConfig, config: str, *, verify: bool, progress: bool, report: str | None = None
) -> None:
    from daskgrad.batch.runner import RunError
    from daskgrad.batch.runner import run as run_config

    hint = RESUME_HINT.format(config=config)
    try:
        summary = run_config(
            cfg, source=config, verify=verify, progress=progress, echo=click.echo, report=report
        )
    except ConfigError as err:
        _fail_config(err)
    except RunError as err:
        click.echo(f"error: {err}", err=True)
        if err.resumable:
            click.echo(f"the output {cfg.output.path} is incomplete; {hint}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: the output {cfg.output.path} is incomplete; {hint}", err=True)
        sys.exit(130)
    for line in summary.lines():
        click.echo(line)
    click.echo(f"done: {cfg.output.path} is complete")


@main.command()
@click.argument("config", type=click.Path(dir_okay=True))
@set_option
def validate(config: str, overrides: tuple[str, ...]) -> None:
    """Check CONFIG against the schema and the input's metadata; write nothing."""
    from daskgrad.batch.cluster import describe
    from daskgrad.batch.config import JOBQUEUE_KINDS
    from daskgrad.batch.jobqueue import job_script
    from daskgrad.batch.runner import plan

    cfg = _load(config, overrides)
    try:
        check_paths(cfg, source=config)
        p = plan(cfg, config)
    except ConfigError as err:
        _fail_config(err)
    click.echo(f"{config}: OK")
    from daskgrad.batch.paths import resolve_input

    note = resolve_input(cfg.input.path).note(cfg.input.path)
    if note:
        click.echo(f"  {note}")
    from daskgrad.batch.run_plan import plan_lines

    for line in plan_lines(p):
        click.echo(f"  {line}")
    for v in p.variables:
        arr = p.result[v]
        click.echo(f"  {v}: {dict(arr.sizes)} {arr.dtype}, zarr chunks {p.chunk_shapes[v]}")
    click.echo(f"  cluster: {describe(cfg.cluster)}")
    if cfg.cluster.kind in JOBQUEUE_KINDS:
        try:
            script = job_script(cfg.cluster)
        except (ValueError, ImportError) as err:
            _fail_config(ConfigError(config, "cluster.jobqueue", None, str(err)))
        click.echo("  job script:")
        click.echo(script)


@main.command()
@click.option(
    "--out",
    "out",
    default="daskgrad-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the synthetic input and the gradient store.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a key of configs/demo.yaml.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def demo(out: str, overrides: tuple[str, ...], no_progress: bool) -> None:
    """Make a synthetic dataset in OUT and run configs/demo.yaml on it."""
    from daskgrad.batch.demo import demo_config_path, make_demo_dataset

    folder = Path(out).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".daskgrad-write-test-{os.getpid()}"
        probe.touch()  # mkdir succeeds on an existing read-only folder; writing tells
        probe.unlink()
    except OSError as err:
        _fail_config(
            ConfigError("--out", None, None, f"cannot write to {out!r}: {err.strerror or err}")
        )
    source = folder / "input.zarr"
    config = str(demo_config_path())
    cfg = _load(
        config,
        (f"input.path={source}", f"output.path={folder / 'gradient.zarr'}", *overrides),
    )
    if not source.exists():
        click.echo(f"writing synthetic input {source}")
        chunks = dict(cfg.input.chunks or {})
        make_demo_dataset().chunk(chunks).to_zarr(
            source, mode="w", zarr_format=3, consolidated=False
        )
    _run(cfg, config, verify=False, progress=not no_progress)
    import xarray as xr

    result = xr.open_zarr(cfg.output.path, consolidated=True)
    click.echo("outputs:")
    for v in result.data_vars:
        click.echo(f"  {v}: {dict(result[v].sizes)} [{result[v].attrs.get('units', '')}]")
    from daskgrad.batch.demo import write_demo_plot
    from daskgrad.batch.plot import INSTALL_HINT

    png = write_demo_plot(cfg.output.path, folder)
    click.echo(f"picture: {png}" if png is not None else f"no picture: {INSTALL_HINT}")


@main.command()
@click.argument("store", type=str)
@click.argument("variable", type=str)
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(dir_okay=False),
    help="The PNG to write (default: VARIABLE.png here).",
)
@click.option(
    "--sel",
    "sel",
    multiple=True,
    metavar="DIM=VALUE",
    help="Fix a dim at the coordinate value nearest VALUE (repeatable).",
)
@click.option(
    "--isel", "isel", multiple=True, metavar="DIM=INDEX", help="Fix a dim at an index (repeatable)."
)
def plot(
    store: str, variable: str, out: str | None, sel: tuple[str, ...], isel: tuple[str, ...]
) -> None:
    """Write a PNG of one slice of VARIABLE in STORE (a map for lat/lon dims)."""
    from daskgrad.batch.plot import INSTALL_HINT, PlotError, parse_selection, plot_store

    try:
        result = plot_store(
            store,
            variable,
            out=out,
            sel=parse_selection(sel, "--sel"),
            isel=parse_selection(isel, "--isel"),
        )
    except PlotError as err:
        _fail_config(err)
    except ImportError as err:
        if str(err) != INSTALL_HINT:
            raise
        click.echo(INSTALL_HINT, err=True)
        sys.exit(2)
    click.echo(f"wrote {result.path} ({result.kind}: {' / '.join(map(str, result.dims))})")


if __name__ == "__main__":
    main()
