"""One way in for weights, used by ``basicsr test`` / ``train`` (``path.pretrain_network_g``),
``derain`` and ``compare``: a file in any supported format, or a zoo name (``zoo:NAME``, or
``NAME`` where no such file exists)."""
from mh2f_plugin.errors import WeightsError
from mh2f_plugin.weights import zoo
from mh2f_plugin.weights.checkpoint import BASICSR, build_loaded, load_into, merged_options, read_weights


def resolve(spec, zoo_folder=None):
    """``(path, network_g from the zoo or None)`` for a weights argument."""
    name = zoo.zoo_name(spec)
    if name is None:
        return spec, None
    return zoo.fetch(name, zoo_folder)


def load_network(spec, network_opt=None, param_key=None, default_opt=None, zoo_folder=None):
    """``(net, network_g)``: the network for the weights ``spec``, built and loaded.

    The network is ``network_opt`` (the user's: an options file or flags) over the zoo entry's
    (named, or found by the file's sha256) over what the file says; when none of them names one,
    ``default_opt``.
    """
    path, zoo_opt = resolve(spec, zoo_folder)
    weights = read_weights(path, param_key)
    if zoo_opt is None and weights.source != BASICSR:
        zoo_opt = zoo.catalogued_arch(path)
    opt = merged_options(weights, {**(zoo_opt or {}), **(network_opt or {})} or None, path)
    if not opt.get('type'):
        opt = {**(default_opt or {}), **opt}
    if not opt.get('type'):
        raise WeightsError(f'{path}: the file does not say which network it belongs to; name one')
    return build_loaded(path, weights, opt)


def load_weights_into(net, spec, strict=True, param_key=None, zoo_folder=None):
    """Loads the weights ``spec`` into the built ``net``; returns the format they were read from.
    As BasicSR's ``load_network``: ``params`` stands in for a missing ``params_ema`` and back."""
    path, _ = resolve(spec, zoo_folder)
    weights = read_weights(path, param_key, fallback=True)
    load_into(net, weights, path, strict=strict)
    return weights.source
