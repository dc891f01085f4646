"""Build a `GenerativeModule` from its config: the family from the registry, the network by Hydra."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from bench.core.errors import BenchError
from bench.data.spec import DatasetSpec
from bench.models.base import GenerativeModule
from bench.models.registry import get_family


def build_model(
    model_cfg: DictConfig | Mapping[str, Any], spec: DatasetSpec, recursive: bool = True
) -> GenerativeModule:
    """`model_cfg` holds `family` (registry name), optional `net` (a Hydra `_target_` node whose
    class takes `spec=` plus its own keys) and `module` (keyword arguments of the family class).

    `recursive=False` builds the network alone, its keys passed as plain values: the way a config
    read from a run folder is built (`bench.pipeline.saved_run`), so no nested node can run."""
    cfg = model_cfg if isinstance(model_cfg, DictConfig) else OmegaConf.create(dict(model_cfg))
    cls = get_family(cfg.family)
    conditional = cfg.get("conditional", False)
    # a conditional network embeds num_classes labels plus a "no label" entry; unconditional
    # networks (and plugins that never condition) are built exactly as before
    net_args = {"num_classes": spec.num_classes} if conditional is True and cls.supports_conditional else {}
    net = None
    if cfg.get("net") is not None:
        target = cfg.net.get("_target_")
        try:
            # a partial, so `spec` reaches the network as the DatasetSpec object itself
            net = instantiate(cfg.net, _partial_=True, _recursive_=recursive)(spec=spec, **net_args)
        except InstantiationException as err:
            reason = " ".join(str(err.__cause__ or err).split())  # Hydra's messages span lines
            raise BenchError(f"model.net: could not build {target}: {reason}") from None
        except TypeError as err:  # unknown or missing keyword arguments of the network
            raise BenchError(f"model.net: could not build {target}: {err}") from None
    module_cfg = cfg.get("module")
    kwargs = OmegaConf.to_container(module_cfg, resolve=True) if module_cfg is not None else {}
    if "conditional" in cfg:
        kwargs["conditional"] = conditional
    try:
        return cls(net=net, spec=spec, **kwargs)
    except TypeError as err:  # a key of `module` the family does not take: a typo, or a record's planted key
        if "keyword argument" not in str(err):
            raise
        raise BenchError(f"model.module: the {cfg.family} family cannot take these keys ({err})") from None
