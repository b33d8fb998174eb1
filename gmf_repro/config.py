"""Where the config tree lives, and the checks that turn a wrong choice into one clear line."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from .errors import UserError

# The config tree lives in the package (shipped in the wheel and the sdist); the top-level `conf` of a
# checkout is a link to it, for paths written as conf/...
CONF_DIR = Path(__file__).resolve().parent / "conf"


def _label(choice: Any) -> str:
    """A run label from a group's chosen option: ``demo/gmf`` -> ``gmf`` (size variants share the method's label)."""
    return "none" if choice in (None, "", "null") else str(choice).rsplit("/", 1)[-1]


def _run_group(group: Any) -> str | None:
    from .loggers import wandb_group

    return wandb_group(group)


def _run_tags(tags: Any, fuser: Any) -> list[str]:
    return [*(str(t) for t in tags or ()), str(fuser)]


def _run_name(fuser: Any, data: Any, seed: Any, style: str = "title") -> str:
    from .loggers import run_name

    return run_name(fuser, data, seed, style)


def _glob(group: str, pattern: str) -> str:
    """A group's options matching ``pattern``, as a sweep: ``${gmf.glob:fuser,demo/*}`` -> ``demo/avoid_df,…``.

    Hydra's own ``glob(demo/*)`` matches a group's top-level options only, so a subfolder's are never found."""
    import fnmatch

    options = [o for o in group_options(group) if fnmatch.fnmatchcase(o, pattern)]
    if not options:
        raise UserError(f"no {group} option matches '{pattern}': choose among {', '.join(group_options(group))}")
    return ",".join(options)


def register_resolvers() -> None:
    """The resolvers conf/config.yaml's ``labels`` and conf/logger/*.yaml interpolate, and ``gmf.glob`` for
    sweeps over a group's subfolder (conf/experiment/demo.yaml).

    Registered when this module is imported: the CLI, ``compose`` and every tool import it before a
    config is resolved."""
    for name, fn in (("gmf.label", _label), ("gmf.run_group", _run_group), ("gmf.run_tags", _run_tags),
                     ("gmf.run_name", _run_name), ("gmf.glob", _glob)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register_resolvers()


def compose(overrides: Sequence[str] = (), return_hydra_config: bool = False, config_name: str = "config") -> Any:
    """The composed job config for ``overrides``, as ``python -m gmf_repro <overrides>`` would run it.

    The one place outside the CLI that loads the config tree (demo, complexity, scripts, tests);
    ``config_name="bench"`` composes ``python -m gmf_repro.bench``'s. Its
    ``labels`` are resolved here, from this composition's record of the chosen options (in a CLI job
    Hydra resolves them itself), so a composed config never reads another composition's choices."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import open_dict, read_write

    with outside_hydra_app(), initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with with_hydra_config(cfg), open_dict(cfg):
        cfg.labels = OmegaConf.to_container(cfg.labels, resolve=True)
    if not return_hydra_config:
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
    return cfg


@contextlib.contextmanager
def with_hydra_config(cfg: Any) -> Iterator[None]:
    """``${hydra:...}`` resolves against ``cfg.hydra`` inside the block; the previous Hydra config is put back."""
    from hydra.core.hydra_config import HydraConfig

    instance = HydraConfig.instance()
    saved = instance.cfg
    instance.set_config(cfg)
    try:
        yield
    finally:
        instance.cfg = saved


def group_options(group: str, nested: bool = True) -> list[str]:
    """Config names in a group folder, e.g. ``fuser`` -> ``["concat", "demo/gmf", "gmf", ...]``.

    ``nested=False`` keeps the top level only (the paper configurations, without ``demo/`` variants).
    """
    folder = CONF_DIR / group
    if not folder.is_dir():
        return []
    files = folder.rglob("*.yaml") if nested else folder.glob("*.yaml")
    return sorted(p.relative_to(folder).with_suffix("").as_posix() for p in files)


def check_overrides(overrides: Sequence[str]) -> None:
    """Reject ``group=unknown`` before Hydra composes, naming the nearest option and the valid ones (sweeps ``a,b``
    too)."""
    for item in overrides:
        if "=" not in item or item.startswith(("hydra", "~", "-")):
            continue
        key, value = item.split("=", 1)
        key = key.lstrip("+")
        group = key.split("@", 1)[0].lstrip("/")
        if "." in group or not (CONF_DIR / group).is_dir() or value in ("null", ""):
            continue
        values = value.split(",") if not value.startswith(("[", "choice(", "range(", "glob(")) else []
        options = group_options(group)
        for v in values:
            if v not in options:
                raise unknown_option(group, v, key, item)


def unknown_option(group: str, value: str, key: str | None = None, item: str | None = None,
                   extra: Sequence[str] = ()) -> UserError:
    """``unknown fuser 'gmff' in 'fuser=gmff': did you mean fuser=gmf? choose one of ...`` (``extra``: options
    beyond the group's files, e.g. ``all``)."""
    import difflib

    key = key or group
    options = [*group_options(group), *extra]
    near = [o for o in options if o.startswith(value) or o.rsplit("/", 1)[-1] == value][:3] or \
        difflib.get_close_matches(value, options, n=1, cutoff=0.6)
    hint = f"did you mean {' or '.join(f'{key}={n}' for n in near)}? " if near else ""
    where = f" in '{item}'" if item and item.split("=", 1)[-1] != value else ""  # a sweep's list: which one
    return UserError(f"unknown {group} '{value}'{where}: {hint}choose one of {', '.join(options)} (conf/{group}/)")


# Hydra's flags that take a value (the word after one is no override) and those that print instead of running
_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir",
                "-cd", "--experimental-rerun", "--shell-completion", "-sc"}
_INFO_FLAGS = {"--info", "-i"}
_INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
_PRINT_FLAGS = {"--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--version", "--shell-completion",
                "-sc", "--resolve"}


def overrides_of(argv: Sequence[str]) -> list[str]:
    """The overrides of a command line: its words without Hydra's flags (``-m``, ``--cfg job``, ...)."""
    out, skip = [], False
    for i, word in enumerate(argv):
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            flag = word.split("=", 1)[0]
            skip = "=" not in word and (flag in _VALUE_FLAGS or (
                flag in _INFO_FLAGS and i + 1 < len(argv) and argv[i + 1] in _INFO_CHOICES))
            continue
        out.append(word)
    return out


def check_override_syntax(overrides: Sequence[str]) -> None:
    """Each override as Hydra's grammar reads it; one that it cannot read is named with what is wrong."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for item in overrides:
        try:
            parser.parse_overrides([item])
        except HydraException as err:
            raise UserError(f"cannot read the override '{item}': {_syntax_reason(item, str(err))}; write key=value "
                            f"(e.g. trainer.max_epochs=3, fuser=gmf), and quote a value with brackets or spaces: "
                            f"'data.dims=[64,64]'") from None


def _syntax_reason(item: str, message: str) -> str:
    """Hydra's parser message, said plainly: the character it stopped at, a missing '=', an unclosed bracket."""
    lines = [line for line in message.splitlines() if line.strip() and not line.startswith("See https")]
    caret = next((line for line in lines if line.strip() == "^"), None)
    if caret is not None and lines and "LexerNoViableAltException" in lines[0]:
        pos = len(caret) - len(lines[0]) + len(item) - 1  # the caret line is aligned under the echoed override
        if 0 <= pos < len(item):
            return f"unexpected '{item[pos]}' at character {pos + 1}"
    text = " ".join(line for line in lines if not line.startswith("Error parsing override"))
    if "missing EQUAL" in text:
        return "it has no '='"
    if "no viable alternative" in text or "<EOF>" in text:
        return "it ends too early (an unclosed bracket or quote, or a trailing comma?)"
    return text or "Hydra's parser refused it"


def check_command_line(argv: Sequence[str], config_name: str = "config") -> None:
    """Everything a command line can be checked for before Hydra runs (``python -m gmf_repro``, bench, demo):
    each override's syntax, every group choice, every setting's name, and the first job's settings
    (``check_settings``: missing required values, types and ranges, precision), each a one-line UserError."""
    overrides = overrides_of(argv)
    check_override_syntax(overrides)
    check_overrides(overrides)
    check_setting_keys(argv, config_name)
    printing = any(word.split("=", 1)[0] in _PRINT_FLAGS for word in argv)  # printing a config runs no job
    other_tree = any(word.startswith(("--config-", "-cn", "-cp", "-cd")) for word in argv)
    if not (printing or other_tree):
        check_first_job(overrides, config_name)


def check_first_job(overrides: Sequence[str], config_name: str = "config") -> None:
    """``check_settings`` on the first job of the command (the first value of each sweep), so that a sweep
    stops before its first job instead of failing in every one. What cannot be composed is left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        first = []
        for o in OverridesParser.create().parse_overrides(list(overrides)):
            if o.key_or_group.startswith("hydra"):
                continue
            if o.is_sweep_override():
                first.append(f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}")
            else:
                first.append(o.input_line)
        cfg = compose(first, return_hydra_config=True, config_name=config_name)
    except Exception:  # noqa: BLE001 - Hydra gives its own message for what it cannot compose
        return
    with with_hydra_config(cfg):
        check_settings(cfg)


# Settings whose wrong type or range would otherwise fail late (after a cache build) or with no text.
_POSITIVE_INTS = (
    "trainer.max_epochs", "trainer.log_every_n_steps", "trainer.accumulate_grad_batches", "data.batch_size",
    "data.n_train", "data.n_test", "fuser.n", "eval.latency_repeats", "eval.latency_threads",
)
_NON_NEGATIVE_INTS = ("data.num_workers", "seed")
_INT_LISTS = ("data.dims",)
_POSITIVE_NUMBERS = ("task.optimizer.lr",)
_NON_NEGATIVE_NUMBERS = ("task.optimizer.momentum", "task.optimizer.weight_decay")
_BOOLS = ("resume",)


def _is_int(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value: object, minimum: float, strict: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value > minimum if strict else value >= minimum


def check_settings(cfg: Any) -> None:
    """Type and range of the common numeric and boolean settings, before anything is built or decoded.

    A setting the config does not have (``fuser.n`` of a fuser without it) or has set to null is skipped.
    """

    def value(key: str) -> Any:
        try:
            found = OmegaConf.select(cfg, key, default=None)
        except Exception as err:  # noqa: BLE001 - an interpolation that cannot be resolved
            raise UserError(f"{key} cannot be read: {err}") from None
        return OmegaConf.to_container(found, resolve=True) if OmegaConf.is_config(found) else found

    def bad(key: str, got: Any, want: str, example: str) -> UserError:
        return UserError(f"{key}={got!r} must be {want}; for example {key}={example}")

    for key in _POSITIVE_INTS:
        v = value(key)
        if v is not None and not _is_int(v, 1):
            raise bad(key, v, "an integer >= 1", "1")
    for key in _NON_NEGATIVE_INTS:
        v = value(key)
        if v is not None and not _is_int(v, 0):
            raise bad(key, v, "an integer >= 0", "0")
    for key in _INT_LISTS:
        v = value(key)
        if v is not None and not (isinstance(v, list) and v and all(_is_int(d, 1) for d in v)):
            raise bad(key, v, "a list of integers >= 1", "[512,512]")
    for key in _POSITIVE_NUMBERS:
        v = value(key)
        if v is not None and not _is_number(v, 0, strict=True):
            raise bad(key, v, "a number > 0", "0.01")
    for key in _NON_NEGATIVE_NUMBERS:
        v = value(key)
        if v is not None and not _is_number(v, 0, strict=False):
            raise bad(key, v, "a number >= 0", "0")
    for key in _BOOLS:
        v = value(key)
        if v is not None and not isinstance(v, bool):
            raise bad(key, v, "true or false", "true")
    v = value("threads")
    if v is not None and v != "auto" and not _is_int(v, 1):
        raise bad("threads", v, "auto, an integer >= 1 or null (torch's default)", "auto")
    v = value("trainer.precision")
    if v is not None and str(v) not in precisions():
        raise UserError(f"trainer.precision={v!r} is not a precision Lightning knows: use auto (16-mixed on a GPU, "
                        f"32-true on the CPU), 32-true, 16-mixed or bf16-mixed (all: {', '.join(precisions())})")
    v = value("print_config")
    if v is not None and not (isinstance(v, bool) or v == "auto"):
        raise bad("print_config", v, "true, false or auto", "auto")
    v = value("trainer.deterministic")  # Lightning's "warn": deterministic where possible, a warning elsewhere
    if v is not None and not (isinstance(v, bool) or v == "warn"):
        raise bad("trainer.deterministic", v, "true, false or warn", "warn")
    check_callback_nodes(cfg)
    check_required(cfg)


def precisions() -> list[str]:
    """``trainer.precision`` values: ``auto`` (run.resolve_precision) and every one Lightning accepts."""
    import typing

    from lightning_fabric.plugins.precision.precision import _PRECISION_INPUT

    def flat(t: Any) -> list[str]:
        args = typing.get_args(t)
        return [x for a in args for x in flat(a)] if args else [str(t)]

    return ["auto", *dict.fromkeys(flat(_PRECISION_INPUT))]


# what to give for a required setting that the chosen option leaves open (`???` in its yaml)
_REQUIRED_HINTS = {
    "data.path": "data.path=/path/to/mydata.npz (a .npz or .pt file, or a folder of .npy files; docs/data.md, "
                 "\"Your own data\")",
    "data.root": "data.root=/path/to/your/clips (the folder with clips.csv and the media files; docs/data.md)",
}


def check_required(cfg: Any) -> None:
    """A setting the chosen option leaves to the user (``???``, e.g. ``data.path`` of ``data=features``) is named
    with the override that gives it, before anything is built."""
    missing = [k for k in _missing_keys(cfg) if not k.startswith("hydra.")]
    if not missing:
        return
    key = missing[0]
    group = key.split(".", 1)[0]
    labels = cfg.get("labels") or {}
    chosen = f"{group}={labels[group]} needs it" if group in labels else "the config leaves it open"
    hint = _REQUIRED_HINTS.get(key, f"{key}=<value>")
    raise UserError(f"{key} is not set ({chosen}): add {hint}")


def _missing_keys(node: Any, prefix: str = "") -> list[str]:
    """Keys whose value is ``???``, found without resolving any interpolation (``${hydra:...}`` cannot be
    resolved outside a job; OmegaConf.missing_keys resolves)."""
    from omegaconf import DictConfig, ListConfig

    out: list[str] = []
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node)) if isinstance(node, ListConfig) else []
    for key in keys:
        child = node._get_node(key)
        name = f"{prefix}{key}" if isinstance(node, DictConfig) else f"{prefix[:-1]}[{key}]"
        if child is None:
            continue
        if child._is_missing():
            out.append(name)
        elif isinstance(child, (DictConfig, ListConfig)) and not child._is_interpolation():
            out += _missing_keys(child, f"{name}.")
    return sorted(out)


# Groups whose choice is one Lightning object (or none): a plain value in their place (`progress: false`
# in an experiment file instead of `override /progress: none`) would otherwise fail deep inside the trainer.
_COMPONENT_GROUPS = ("progress", "checkpoint", "logger")


def check_callback_nodes(cfg: Any) -> None:
    """``callbacks`` maps names to config nodes with a ``_target_``; progress, checkpoint and logger are nodes.

    Checked before anything is built: a plain value would otherwise fail inside Hydra or the trainer."""
    from omegaconf import DictConfig

    callbacks = cfg.get("callbacks")
    if not isinstance(callbacks, DictConfig):
        raise UserError(f"callbacks={_shown(callbacks)} must be a mapping name -> callback config, for example "
                        f"callbacks.probe={{_target_: gmf_repro.callbacks.LinearProbe}} ({{}} for none)")
    for name, node in callbacks.items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise UserError(f"callbacks.{name}={_shown(node)} must be a callback config with a _target_, for "
                            f"example callbacks.{name}={{_target_: gmf_repro.callbacks.LinearProbe}}; remove it "
                            f"with ~callbacks.{name}")
    for group in _COMPONENT_GROUPS:
        node = cfg.get(group)
        if node is not None and not isinstance(node, DictConfig):
            options = group_options(group)
            pick = node if node in options else "none"  # `progress: false` means progress=none
            raise UserError(f"{group}={_shown(node)} is a plain value, not one of the {group} group's configs "
                            f"({', '.join(options)}: conf/{group}/); choose one with `- override /{group}: {pick}` "
                            f"in an experiment's defaults or {group}={pick} on the command line")


def _shown(value: Any) -> str:
    """A config value as YAML writes it (``false``, ``null``, ``'none'``, ``{x: 3}``)."""
    import json

    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value)
    return repr(value) if isinstance(value, str) else json.dumps(value).replace('"', "")


def check_setting_keys(overrides: Sequence[str], config_name: str = "config") -> None:
    """A typo'd key (``trainer.max_epoch=3``) names the nearest valid key instead of Hydra's ``+trainer.max_epoch``.

    Composes the first job of the command (first value of each sweep) and looks up every plain
    ``a.b=value`` override in it. Anything this check cannot parse is left to Hydra to report.
    """
    plain = [o for o in overrides if "=" in o and not o.startswith(("-", "+", "~", "hydra"))]
    other_tree = any(o.startswith(("--config-", "-cn", "-cp", "-cd")) for o in overrides)
    if other_tree or not any("." in o.split("=", 1)[0] for o in plain):
        return
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    try:
        parsed = OverridesParser.create().parse_overrides([o for o in overrides if "=" in o and not o.startswith("-")])
        groups, keys = [], []
        for o in parsed:
            if o.key_or_group.startswith("hydra"):
                continue
            if (CONF_DIR / o.key_or_group).is_dir():
                if o.is_sweep_override():
                    groups.append(f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}")
                else:
                    groups.append(o.input_line)
            elif not (o.is_add() or o.is_force_add() or o.is_delete()):
                keys.append(o.key_or_group)
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            tree = OmegaConf.to_container(compose(config_name, overrides=groups), resolve=False)
    except Exception:  # noqa: BLE001 - Hydra gives its own message for what it cannot parse or compose
        return
    command = "python -m gmf_repro" if config_name == "config" else f"python -m gmf_repro.{config_name}"
    for key in keys:
        _check_key(tree, key, command)


def _check_key(tree: dict, key: str, command: str = "python -m gmf_repro") -> None:
    import difflib

    node, path, parts = tree, [], key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict):
            return
        if part not in node:
            here = ".".join(path)
            options = sorted(str(k) for k in node)
            near = difflib.get_close_matches(part, options, n=1, cutoff=0.6)
            if near:
                guess = ".".join([*path, near[0], *parts[i + 1:]])
                raise UserError(f"unknown setting '{key}': did you mean {guess}? "
                                f"(`{command} --cfg job` lists every setting)")
            raise UserError(f"unknown setting '{key}': {here or 'the config'} has {', '.join(options)}")
        node, path = node[part], [*path, part]


@contextlib.contextmanager
def outside_hydra_app() -> Iterator[None]:
    """Let code that composes configs (``initialize_config_dir`` + ``compose``) run inside a Hydra app.

    Hydra keeps one global instance; composing from a job or a Hydra callback (the sweep's report run
    computes paper-size complexity) would fail with "GlobalHydra is already initialized". The app's
    instance is set aside for the block and put back after it."""
    from hydra.core.global_hydra import GlobalHydra

    gh = GlobalHydra.instance()
    saved = gh.hydra if gh.is_initialized() else None
    gh.clear()
    try:
        yield
    finally:
        gh.clear()
        if saved is not None:
            gh.initialize(saved)
