"""The authors' checkpoint layouts, recognised by their keys and converted to this package's archs.

Each ``OfficialFormat`` turns an official state dict (``module.`` prefixes already removed) into
``(network_g options, state dict)`` for one of the archs in ``mh2f_plugin.archs``: it renames the
keys, fuses the gate convolutions that those archs compute in one convolution, drops parameters
that the official forward pass never uses, and flips the colour channels of networks the
authors trained on BGR images (our pipeline feeds RGB). What a file cannot say (PReNet's
residual output in its ablations, the stage counts, RESCAN's prediction frame) takes the
official test-time default and can be overridden by the caller's options.
"""
import re
import torch
from dataclasses import dataclass
from typing import Callable

from mh2f_plugin.errors import WeightsError

RGB_FROM_BGR = [2, 1, 0]
SHOWN = 6  # keys listed in an error


def listing(keys):
    keys = sorted(keys)
    return ', '.join(keys[:SHOWN]) + (f' and {len(keys) - SHOWN} more' if len(keys) > SHOWN else '')


def _fuse(state, groups):
    """``state`` with each group of keys (``[names], fused``) concatenated along the output
    channels, for ``weight`` and ``bias``, into ``fused.weight`` / ``fused.bias``."""
    state = dict(state)
    for names, fused in groups:
        for suffix in ('weight', 'bias'):
            keys = [f'{name}.{suffix}' for name in names]
            present = [key for key in keys if key in state]
            if not present:
                continue
            if len(present) != len(keys):
                raise WeightsError(f'missing {listing(set(keys) - set(present))}')
            state[f'{fused}.{suffix}'] = torch.cat([state.pop(key) for key in keys])
    return state


def _rename(state, rules):
    """Keys renamed by the first matching ``(regex, replacement)``; ``None`` drops the key.
    A key that matches no rule is an error naming it."""
    renamed, unexpected = {}, []
    for key, value in state.items():
        for pattern, replacement in rules:
            match = re.fullmatch(pattern, key)
            if match:
                if replacement is not None:
                    renamed[match.expand(replacement)] = value
                break
        else:
            unexpected.append(key)
    if unexpected:
        raise WeightsError(f'unexpected keys {listing(unexpected)}')
    return renamed


def _zero_based(state, marker):
    """Keys with ``marker.N`` renumbered from 0 (the official layers are numbered from 1)."""
    pattern = re.compile(rf'{re.escape(marker)}\.(\d+)')
    return {pattern.sub(lambda m: f'{marker}.{int(m.group(1)) - 1}', key): value for key, value in state.items()}


def _from_bgr(state, first_weight, last_conv):
    """Reverses the colour channels of a network trained on BGR images, at its first convolution's
    weight and its last convolution; returns the widths the last one gives (``num_in_ch``, ``num_feat``)."""
    state[first_weight] = state[first_weight][:, RGB_FROM_BGR]
    for suffix in ('weight', 'bias'):
        if f'{last_conv}.{suffix}' in state:
            state[f'{last_conv}.{suffix}'] = state[f'{last_conv}.{suffix}'][RGB_FROM_BGR]
    out_channels, in_channels = state[f'{last_conv}.weight'].shape[:2]
    return {'num_in_ch': out_channels, 'num_feat': in_channels}


LSTM_GATES = ('conv_i', 'conv_f', 'conv_g', 'conv_o')


def convert_prenet(state):
    """csdwren/PReNet ``networks.py``: PReNet, PReNet_r, PRN, PRN_r and the ablations."""
    if 'conv_i.0.weight' in state:
        recurrent = 'lstm'
    elif 'conv_z.0.weight' in state:
        recurrent = 'gru'
    else:
        recurrent = 'none'
    in_ch, out_ch = state['conv0.0.weight'].shape[1], state['conv.0.weight'].shape[0]
    stage_input = 'concat' if in_ch == 2 * out_ch else 'previous'
    shared = 'res_conv2.0.weight' not in state
    num_res = 5 if shared else sum(f'res_conv{i}.0.weight' in state for i in range(1, 100))
    # the official GRU and "x" variants predict the image directly; the LSTM one is ambiguous
    residual = recurrent != 'gru' and stage_input == 'concat'
    if recurrent == 'lstm':
        state = _fuse(state, [([f'{g}.0' for g in LSTM_GATES], 'lstm.gates')])
    elif recurrent == 'gru':
        state = _fuse(state, [(['conv_z.0', 'conv_b.0'], 'gru.gates')])
    rules = [(r'conv0\.0\.(weight|bias)', r'head.0.\1'), (r'conv\.0\.(weight|bias)', r'tail.\1'),
             (r'(lstm|gru)\.gates\.(weight|bias)', r'\1.gates.\2'), (r'conv_g\.0\.(weight|bias)', r'gru.candidate.\1'),
             (r'res_conv(\d+)\.([02]\.(?:weight|bias))', r'body.body.\1.body.\2')]
    state = _zero_based(_rename(state, rules), 'body.body')
    options = {
        'type': 'PReNet',
        'num_in_ch': out_ch,
        'num_feat': state['head.0.weight'].shape[0],
        'num_iters': 6,
        'num_res': num_res,
        'recurrent': recurrent,
        'shared_res': shared,
        'residual': residual,
        'stage_input': stage_input
    }
    return options, state


def convert_brn(state):
    """csdwren/RecDerain ``generator.py``: BRN. The rain stream's ``res_conv4_r`` and
    ``res_conv5_r`` are declared but never applied by the official forward; they are dropped."""
    state = _fuse(state, [([f'{g}.0' for g in LSTM_GATES], 'image.lstm.gates'),
                          ([f'{g}_r.0' for g in LSTM_GATES], 'rain.lstm.gates')])
    rules = [(r'conv0\.0\.(weight|bias)', r'image.head.0.\1'), (r'conv\.0\.(weight|bias)', r'image.tail.\1'),
             (r'conv0_r\.0\.(weight|bias)', r'rain.head.0.\1'), (r'conv_r\.0\.(weight|bias)', r'rain.tail.\1'),
             (r'(image|rain)\.lstm\.gates\.(weight|bias)', r'\1.lstm.gates.\2'), (r'res_conv[45]_r\..*', None),
             (r'res_conv(\d+)_r\.([02]\.(?:weight|bias))', r'rain.body.body.\1.body.\2'),
             (r'res_conv(\d+)\.([02]\.(?:weight|bias))', r'image.body.body.\1.body.\2')]
    state = _zero_based(_zero_based(_rename(state, rules), 'rain.body.body'), 'image.body.body')
    num_res = sum(key.startswith('image.body') and key.endswith('0.weight') for key in state)
    options = {
        'type': 'BRN',
        'num_in_ch': state['image.tail.weight'].shape[0],
        'num_feat': state['image.tail.weight'].shape[1],
        'num_iters': 8,
        'num_res': num_res,
        'num_res_rain': 3
    }
    return options, state


def convert_rescan(state):
    """XiaLiPKU/RESCAN ``config/model.py`` with GRU units (its default), trained on BGR images."""
    if 'rnns.0.conv_xz.weight' not in state:
        raise WeightsError('only the GRU unit (RESCAN\'s default) is implemented; this file has '
                           f'{listing(k for k in state if k.startswith("rnns.0."))}')
    depth = len({key.split('.')[1] for key in state if key.startswith('rnns.')}) + 2
    groups = []
    for i in range(depth - 2):
        groups += [([f'rnns.{i}.conv_xz', f'rnns.{i}.conv_xr', f'rnns.{i}.conv_xn'], f'layers.{i}.conv_x'),
                   ([f'rnns.{i}.conv_hz', f'rnns.{i}.conv_hr'], f'layers.{i}.conv_h')]
    rules = [(r'layers\.(\d+)\.(conv_x|conv_h)\.(weight|bias)', r'layers.\1.\2.\3'),
             (r'rnns\.(\d+)\.conv_hn\.(weight|bias)', r'layers.\1.conv_hn.\2'),
             (r'rnns\.(\d+)\.se\.fc\.([02])\.(weight|bias)', r'layers.\1.se.fc.\2.\3'),
             (r'dec\.([03])\.(weight|bias)', r'decoder.\1.\2'),
             (r'dec\.1\.fc\.([02])\.(weight|bias)', r'decoder.1.fc.\1.\2')]
    state = _rename(_fuse(state, groups), rules)
    options = {
        'type': 'RESCAN',
        **_from_bgr(state, 'layers.0.conv_x.weight', 'decoder.3'), 'depth': depth,
        'num_stages': 4,
        'se_hidden': state['layers.0.se.fc.0.weight'].shape[0],
        'frame': 'full'
    }
    return options, state


IRNN_DIRECTIONS = ('up', 'right', 'down', 'left')  # the order of SPANet's IRNN parameters here


def convert_spanet(state):
    """stevewongv/SPANet ``SPANet.py``, trained on BGR images. SAM's direction-attention layer is
    dropped: the official forward computes it but never applies it."""
    state = dict(state)
    for irnn in ('irnn1', 'irnn2'):
        for suffix in ('weight', 'bias'):
            keys = [f'SAM1.{irnn}.{d}_weight.{suffix}' for d in IRNN_DIRECTIONS]
            missing = [key for key in keys if key not in state]
            if missing:
                raise WeightsError(f'missing {listing(missing)}')
            state[f'sam.{irnn}.{suffix}'] = torch.stack([state.pop(key).reshape(-1) for key in keys])
    rules = [(r'conv_in\.0\.weight', r'conv_in.0.weight'), (r'conv_out\.0\.weight', r'conv_out.weight'),
             (r'sam\.(irnn[12])\.(weight|bias)', r'sam.\1.\2'),
             (r'SAM1\.(conv_in|conv2|conv3|conv_out)\.weight', r'sam.\1.weight'), (r'SAM1\.attention_layer\..*', None),
             (r'res_block(\d+)\.group1\.conv1\.weight', r'blocks.\1.body.0.weight'),
             (r'res_block(\d+)\.group1\.conv2\.weight', r'blocks.\1.body.2.weight'),
             (r'res_block(\d+)\.group1\.conv3\.weight', r'blocks.\1.body.4.weight')]
    state = _zero_based(_rename(state, rules), 'blocks')
    return {'type': 'SPANet', **_from_bgr(state, 'conv_in.0.weight', 'conv_out'), 'direction_attention': False}, state


def convert_rcdnet(state):
    """hongwang01/RCDNet ``rcdnet.py``. Unused by the official forward and dropped: ``eta1``,
    ``mnet.*``, and all rain kernels in ``conv`` but ``conv[1]``, the one every stage uses."""
    prox = r'(\d+)\.(\d)\.(weight|bias|running_mean|running_var|num_batches_tracked)'
    rules = [(r'eta1|mnet\..*', None), (r'eta2', 'eta_b_init'), (r'eta11', 'eta_m'), (r'eta12', 'eta_b'),
             (r'weight0', 'kernel_init'), (r'conv', 'kernel'), (r'w_z_f', 'filter_z'), (r'tau', 'tau'),
             (r'xnet\.resx' + prox, r'prox_b_init.blocks.\1.\2.\3'),
             (r'fxnet\.resx' + prox, r'prox_b_final.blocks.\1.\2.\3'),
             (r'x_stage\.(\d+)\.resx' + prox, r'prox_b.\1.blocks.\2.\3.\4'),
             (r'm_stage\.(\d+)\.resm' + prox, r'prox_m.\1.blocks.\2.\3.\4'), (r'm_stage\.(\d+)\.tau', r'prox_m.\1.tau')]
    state = _zero_based(_rename(state, rules), 'blocks')
    state['kernel'] = state['kernel'][1] if state['kernel'].dim() == 5 else state['kernel']
    num_stages = len({key.split('.')[1] for key in state if key.startswith('prox_m.')})
    options = {
        'type': 'RCDNet',
        'num_in_ch': state['kernel'].shape[0],
        'num_stages': num_stages,
        'num_m': state['kernel'].shape[1],
        'num_z': state['filter_z'].shape[0],
        'num_res': len({key.split('.')[2]
                        for key in state if key.startswith('prox_b_init.')})
    }
    return options, state


def convert_vrgnet(state):
    """hongwang01/VRGNet ``prenet.py`` (its deraining network, keys ``derainet.*``): PReNet whose
    6th stage has its own output convolution ``convfinal`` of 6 channels; the first 3 are the image
    (the mean), the last 3 its log-variance, which no image needs and which is dropped."""
    state = {key[len('derainet.'):]: value for key, value in state.items()}
    last = {suffix: state.pop(f'convfinal.0.{suffix}')[:3] for suffix in ('weight', 'bias')}
    options, state = convert_prenet(state)
    state.update({f'last_tail.{suffix}': value for suffix, value in last.items()})
    return {**options, 'type': 'VRGNet', 'num_in_ch': last['weight'].shape[0]}, state


def convert_mardnet(state):
    """cxtalk/MARD-Net ``networks.py``; its squeeze-and-excitation layers' linear weights become
    1x1 convolutions (BasicSR's ``ChannelAttention``)."""
    block = r'b(\d+)\.'
    rules = [(r'entry\.(weight|bias)', r'head.\1'), (r'exit\.(weight|bias)', r'tail.\1'),
             (block + r'x1_1\.conv\.(weight|bias)', r'blocks.\1.scale3_1.0.\2'),
             (block + r'x2_1\.conv\.(weight|bias)', r'blocks.\1.scale5_1.0.\2'),
             (block + r'x1_2\.conv\.(weight|bias)', r'blocks.\1.scale3_2.0.\2'),
             (block + r'x2_2\.conv\.(weight|bias)', r'blocks.\1.scale5_2.0.\2'),
             (block + r'out1\.(weight|bias)', r'blocks.\1.fuse.\2'),
             (block + r'out2\.(weight|bias)', r'blocks.\1.conv.\2'),
             (block + r'se\.fc\.0\.(weight|bias)', r'blocks.\1.channel_attention.attention.1.\2'),
             (block + r'se\.fc\.2\.(weight|bias)', r'blocks.\1.channel_attention.attention.3.\2'),
             (block + r'sp\.head\.0\.weight', r'blocks.\1.spatial_attention.body.0.weight'),
             (block + r'sp\.midd\.0\.weight', r'blocks.\1.spatial_attention.body.2.weight'),
             (block + r'sp\.tail\.weight', r'blocks.\1.spatial_attention.body.4.weight'),
             (r'c(\d+)\.body\.0\.(weight|bias)', r'fusions.\1.0.\2')]
    state = _zero_based(_zero_based(_rename(state, rules), 'blocks'), 'fusions')
    state = {
        key: value[..., None, None] if 'channel_attention' in key and value.dim() == 2 else value
        for key, value in state.items()
    }
    options = {
        'type': 'MARDNet',
        'num_in_ch': state['head.weight'].shape[1],
        'num_feat': state['head.weight'].shape[0],
        'num_blocks': sum(key.endswith('.fuse.weight') for key in state),
        'reduction': state['head.weight'].shape[0] // state['blocks.0.spatial_attention.body.0.weight'].shape[0]
    }
    return options, state


JORDER_CONVS = {
    'encoder': 'head',
    'mask_estimator1': 'mask_head.0',
    'mask_estimator2': 'mask_head.1',
    'level_estimator1': 'level_head.0',
    'level_estimator2': 'level_head.1',
    'mask_F_b_encoder1': 'mask_shift.0',
    'mask_F_b_encoder2': 'mask_shift.2',
    'mask_F_w_encoder1': 'mask_scale.0',
    'mask_F_w_encoder2': 'mask_scale.2',
    'level_F_b_encoder1': 'level_shift.0',
    'level_F_b_encoder2': 'level_shift.2',
    'level_F_w_encoder1': 'level_scale.0',
    'level_F_w_encoder2': 'level_scale.2',
    'decoder.0': 'tail.0',
    'decoder.1': 'tail.1',
}
JORDER_BRANCHES = {
    '1': 'branch_a.0',
    '2': 'branch_a.2',
    '3': 'branch_b.0',
    '4': 'branch_b.2',
    '5': 'branch_c.0',
    '6': 'branch_c.2'
}


def convert_jordere(state):
    """flyywh/JORDER-E ``testing_practical/src/model/jorder_e.py``: two stages ``jorder1``, ``jorder2``,
    fed RGB in 0..255 (``rgb_range``)."""
    rules = [(rf'jorder(\d+)\.{re.escape(name)}\.(weight|bias)', rf'stages.\1.{ours}.\2')
             for name, ours in JORDER_CONVS.items()]
    rules += [(rf'jorder(\d+)\.updater\.res(\d+)\.conv{conv}\.(weight|bias)', rf'stages.\1.blocks.\2.{ours}.\3')
              for conv, ours in JORDER_BRANCHES.items()]
    state = _zero_based(_zero_based(_rename(state, rules), 'stages'), 'blocks')
    options = {
        'type': 'JORDERE',
        'num_in_ch': state['stages.0.tail.1.weight'].shape[0],
        'num_feat': state['stages.0.head.weight'].shape[0],
        'num_blocks': sum(key.startswith('stages.0.blocks.') and key.endswith('branch_a.0.weight') for key in state),
        'num_stages': sum(key.endswith('.head.weight') for key in state),
    }
    return options, state


NLEDN_BLOCKS = {
    'up_1': 'encoder.0',
    'up_2': 'encoder.1',
    'up_3': 'encoder.2',
    'down_3': 'middle',
    'down_2': 'decoder.0',
    'down_1': 'decoder.1'
}
NLEDN_NON_LOCAL = {'theta': 'theta', 'phi.0': 'phi', 'g.0': 'g', 'W': 'out'}


def convert_nledn(state):
    """AlexHex7/NLEDN ``lib/NLEDN.py`` (its ``up_*`` blocks are the encoder, ``down_*`` the decoder)."""
    rules = [(r'conv1\.(weight|bias)', r'head.\1'), (r'conv2\.(weight|bias)', r'head2.\1'),
             (r'down_2_fusion\.(weight|bias)', r'skip_fusions.0.\1'),
             (r'down_1_fusion\.(weight|bias)', r'skip_fusions.1.\1'),
             (r'fusion\.([01])\.(weight|bias)', r'fusion.\1.\2'), (r'final_conv\.0\.(weight|bias)', r'tail.\1')]
    for name, ours in NLEDN_BLOCKS.items():
        inner = 'non_local' if name == 'down_3' else 'region_non_local.non_local_block'
        where = 'non_local' if name == 'down_3' else 'non_local.non_local'
        rules += [(rf'{name}\.{inner}\.{re.escape(conv)}\.(weight|bias)', rf'{ours}.{where}.{mine}.\1')
                  for conv, mine in NLEDN_NON_LOCAL.items()]
        rules += [(rf'{name}\.group_(\d+)\.0\.(weight|bias)', rf'{ours}.layers.\1.0.\2'),
                  (rf'{name}\.fusion\.0\.(weight|bias)', rf'{ours}.fusion.\1')]
    state = _rename(state, rules)
    options = {
        'type': 'NLEDN',
        'num_in_ch': state['head.weight'].shape[1],
        'num_feat': state['head.weight'].shape[0],
        'growth': state['middle.layers.0.0.weight'].shape[0]
    }
    return options, state


UMRL_STAGES = {
    '1': 'encoder.0',
    '2': 'encoder.1',
    '3': 'encoder.2',
    '3_1': 'encoder.3',
    '3_2': 'up16',
    '4': 'up8',
    '5': 'up4',
    '6': 'up2',
    '6_1': 'refine'
}
# the dense layers' and transitions' layers: norm, ReLU, conv (, norm, ReLU, conv)
UMRL_LAYERS = {'bn1': 'body.0', 'conv1': 'body.2', 'bn2': 'body.3', 'conv2': 'body.5'}


def _umrl_blocks():
    """``{official prefix: ours}`` of UMRL's dense layers and transitions."""
    blocks = {}
    for index, stage in UMRL_STAGES.items():
        blocks.update({f'dense_block{index}': f'{stage}.0', f'trans_block{index}': f'{stage}.1'})
    for step in (1, 2, 3):
        blocks.update({
            f'res_est.conv{step}': f'residual.body.{step - 1}.0',
            f'res_est.trans_block{step}': f'residual.body.{step - 1}.1'
        })
    for step in (2, 3):  # the confidence estimator starts with a plain convolution
        blocks.update({
            f'conf_res.conv{step}': f'confidence.body.{step - 1}.0',
            f'conf_res.trans_block{step}': f'confidence.body.{step - 1}.1'
        })
    return blocks


def convert_umrl(state):
    """rajeevyasarla/UMRL ``models/derain_mulcmp.py`` (``UMRL``). The transitions' 1x1 transposed
    convolutions become 1x1 convolutions; ``batchnorm1``, ``batchnorm20`` and the confidence
    estimator's ``conv_refin``, never applied by the official forward, are dropped."""
    rules = [(r'batchnorm(1|20)\..*|conf_res\.conv_refin\..*', None), (r'conv_refin\.(weight|bias)', r'rain.0.\1'),
             (r'refine3\.(weight|bias)', r'rain.2.\1'), (r'refineclean1\.(weight|bias)', r'clean.0.\1'),
             (r'refineclean2\.(weight|bias)', r'clean.2.\1'),
             (r'res_est\.conv_refin\.(weight|bias)', r'residual.body.3.\1'),
             (r'res_est\.refine3\.(weight|bias)', r'residual.body.5.\1'),
             (r'conf_res\.conv1\.(weight|bias)', r'confidence.body.0.\1'),
             (r'conf_res\.refine3\.(weight|bias)', r'confidence.body.3.\1')]
    rules += [(rf'{re.escape(official)}\.{layer}\.(\w+)', rf'{ours}.{position}.\1')
              for official, ours in _umrl_blocks().items() for layer, position in UMRL_LAYERS.items()]
    state = {
        key: value.transpose(0, 1) if re.search(r'(^|\.)trans_block[\d_]+\.conv1\.weight$', key) else value
        for key, value in state.items()
    }
    state = _rename(state, rules)
    options = {
        'type': 'UMRL',
        'num_in_ch': state['clean.2.weight'].shape[0],
        'num_feat': state['encoder.0.1.body.2.weight'].shape[0]
    }
    return options, state


def convert_ddn(state):
    """Fu et al.'s DDN ``training.py`` graph (TensorFlow 1 variables ``conv_K/{weights,biases,scale,beta}_K``,
    K from 1 to 26), as DDN's authors, SIRR's authors and BRN's authors trained it. Kernels are HWIO, made OIHW;
    ``scale``/``beta`` are the batch normalisations' weight and bias. SIRR's files also hold the
    biases and normalisations of its unsupervised training branch (``conv_K_1/*``) and are SIRR;
    those, Adam's slots and its power accumulators are dropped."""
    sirr = 'conv_1_1/biases_1' in state
    parts = {'weights': '0.weight', 'biases': '0.bias', 'scale': '1.weight', 'beta': '1.bias'}
    layers = max(int(match.group(1)) for match in map(re.compile(r'conv_(\d+)/weights_\1').fullmatch, state) if match)
    converted = {}
    for key, value in state.items():
        match = re.fullmatch(r'conv_(\d+)/(weights|biases|scale|beta)_\1', key)
        if match is None:
            if not re.fullmatch(r'.*/Adam(_1)?|beta[12]_power|conv_\d+_1/(biases|scale|beta)_\d+', key):
                raise WeightsError(f'unexpected variable {key}')
            continue
        layer, part = int(match.group(1)), match.group(2)
        if layer == 1:
            module = 'head'
        elif layer == layers:
            module = 'tail'
        else:
            module = f'blocks.{(layer - 2) // 2}.{2 * ((layer - 2) % 2)}'
        converted[f'{module}.{parts[part]}'] = value.permute(3, 2, 0, 1).contiguous() if part == 'weights' else value
    options = {
        'type': 'SIRR' if sirr else 'DDN',
        'num_in_ch': converted['head.0.weight'].shape[1],
        'num_feat': converted['head.0.weight'].shape[0],
        'num_blocks': (layers - 2) // 2
    }
    return options, converted


def _depth(state, prefix):
    """How many numbered blocks ``prefix.N.*`` the state has."""
    return len({key[len(prefix) + 1:].split('.', 1)[0] for key in state if key.startswith(prefix + '.')})


def _expansion(hidden, dim):
    """A feed-forward expansion factor that gives ``hidden`` channels for ``dim`` (``int(dim * f)``):
    the authors' 2.66 where it does."""
    return 2.66 if int(dim * 2.66) == hidden else (hidden + 0.5) / dim


def _unet_options(state, levels, suffix=''):
    """Widths, depths and heads of Restormer's encoder-decoder (and the ones built like it)."""
    first = state[f'patch_embed{suffix}.proj.weight']
    return {
        'num_blocks': [_depth(state, f'{level}{suffix}') for level in levels],
        'num_heads': [state[f'{level}{suffix}.0.attn.temperature'].shape[0] for level in levels],
        'ffn_expansion_factor':
        _expansion(state[f'{levels[0]}{suffix}.0.ffn.project_in.weight'].shape[0] // 2, first.shape[0]),
    }


RESTORMER_LEVELS = ('encoder_level1', 'encoder_level2', 'encoder_level3', 'latent')


def _restormer_options(state, arch):
    """``network_g`` of Restormer or DRSformer (``arch``) as far as they share it: channels, widths,
    depths and heads read from ``state``."""
    first = state['patch_embed.proj.weight']
    return {
        'type': arch,
        'num_in_ch': first.shape[1],
        'num_feat': first.shape[0],
        **_unet_options(state, RESTORMER_LEVELS)
    }


def convert_restormer(state):
    """swz30/Restormer ``restormer_arch.py`` (``{'params': ...}``): named as ours; widths and depths read."""
    return {**_restormer_options(state, 'Restormer'), 'num_refinement_blocks': _depth(state, 'refinement')}, dict(state)


def convert_drsformer(state):
    """cschenxiang/DRSformer ``DRSformer_arch.py`` (with MEFC: ``encoder_level0``, ``refinement``) or
    ``DRSformer_arch_200L+SPA.py`` (without), ``{'params': ...}``: named as ours."""
    mefc = any(key.startswith('encoder_level0.') for key in state)
    return {**_restormer_options(state, 'DRSformer'), 'mefc': mefc}, dict(state)


def convert_mprnet(state):
    """swz30/MPRNet ``Deraining/MPRNet.py`` (``{'state_dict': ...}``, often with DataParallel's
    ``module.``): named as ours; widths and depths read."""
    n_feat = state['shallow_feat1.0.weight'].shape[0]
    options = {
        'type': 'MPRNet',
        'n_feat': n_feat,
        'scale_unetfeats': state['stage1_encoder.encoder_level2.0.body.0.weight'].shape[0] - n_feat,
        'scale_orsnetfeats': state['stage3_orsnet.orb1.body.0.body.0.weight'].shape[0] - n_feat,
        'num_cab': _depth(state, 'stage3_orsnet.orb1.body') - 1,  # the CABs, then one convolution
        'kernel_size': state['shallow_feat1.0.weight'].shape[-1],
        'reduction': n_feat // state['shallow_feat1.1.CA.conv_du.0.weight'].shape[0]
    }
    return options, dict(state)


def convert_nerdrain(state):
    """cschenxiang/NeRD-Rain ``model.py`` (``model_S.py``: ``dim`` 32), ``{'state_dict': ...}``: named as ours."""
    levels = ('encoder_level1', 'encoder_level2', 'latent')
    unet = _unet_options(state, levels, suffix='_small')
    options = {
        'type': 'NeRDRain',
        'dim': state['patch_embed_small.proj.weight'].shape[0],
        'num_blocks': unet['num_blocks'],
        'heads': unet['num_heads'],
        'ffn_expansion_factor': unet['ffn_expansion_factor'],
        'inr_hidden': state['INR.imnet.layers.0.weight'].shape[0]
    }
    return options, dict(state)


@dataclass(frozen=True)
class OfficialFormat:
    """One official layout: its ``name``, the repository it comes from, the keys that identify it
    (all must be present), and its converter ``state -> (network_g options, state)``."""
    name: str
    source: str
    signature: tuple
    convert: Callable


FORMATS = (
    OfficialFormat('BRN', 'csdwren/RecDerain generator.py', ('conv0.0.weight', 'conv0_r.0.weight', 'conv_r.0.weight'),
                   convert_brn),
    OfficialFormat('PReNet', 'csdwren/PReNet networks.py', ('conv0.0.weight', 'res_conv1.0.weight', 'conv.0.weight'),
                   convert_prenet),
    OfficialFormat('RESCAN', 'XiaLiPKU/RESCAN config/model.py', ('rnns.0.se.fc.0.weight', 'dec.3.weight'),
                   convert_rescan),
    OfficialFormat('SPANet', 'stevewongv/SPANet SPANet.py',
                   ('conv_in.0.weight', 'SAM1.conv_in.weight', 'res_block1.group1.conv1.weight'), convert_spanet),
    OfficialFormat('RCDNet', 'hongwang01/RCDNet rcdnet.py', ('eta11', 'eta12', 'weight0', 'w_z_f'), convert_rcdnet),
    OfficialFormat('VRGNet', 'hongwang01/VRGNet prenet.py', ('derainet.conv0.0.weight', 'derainet.convfinal.0.weight'),
                   convert_vrgnet),
    OfficialFormat('MARD-Net', 'cxtalk/MARD-Net networks.py',
                   ('entry.weight', 'b1.x1_1.conv.weight', 'c1.body.0.weight'), convert_mardnet),
    OfficialFormat('JORDER-E', 'flyywh/JORDER-E testing_practical/src/model/jorder_e.py',
                   ('jorder1.encoder.weight', 'jorder2.encoder.weight', 'jorder1.updater.res1.conv1.weight'),
                   convert_jordere),
    OfficialFormat(
        'NLEDN', 'AlexHex7/NLEDN lib/NLEDN.py',
        ('conv1.weight', 'up_1.region_non_local.non_local_block.theta.weight', 'down_3.non_local.theta.weight'),
        convert_nledn),
    OfficialFormat('UMRL', 'rajeevyasarla/UMRL models/derain_mulcmp.py',
                   ('dense_block1.conv1.weight', 'res_est.conv1.conv1.weight', 'refineclean1.weight'), convert_umrl),
    OfficialFormat('DRSformer', 'cschenxiang/DRSformer DRSformer_arch.py',
                   ('patch_embed.proj.weight', 'encoder_level1.0.attn.attn1', 'latent.0.attn.attn4'),
                   convert_drsformer),
    OfficialFormat('Restormer', 'swz30/Restormer restormer_arch.py',
                   ('patch_embed.proj.weight', 'encoder_level1.0.attn.temperature', 'refinement.0.attn.qkv.weight'),
                   convert_restormer),
    OfficialFormat('MPRNet', 'swz30/MPRNet Deraining/MPRNet.py',
                   ('shallow_feat1.0.weight', 'stage3_orsnet.orb1.body.0.body.0.weight', 'concat23.weight'),
                   convert_mprnet),
    OfficialFormat('NeRD-Rain', 'cschenxiang/NeRD-Rain model.py',
                   ('patch_embed_small.proj.weight', 'INR.imnet.layers.0.weight', 'BF1.query_conv.weight'),
                   convert_nerdrain),
    OfficialFormat('DDN', "DDN's TensorFlow training.py (Fu et al.; SIRR's and BRN's authors' files too)",
                   ('conv_1/weights_1', 'conv_1/scale_1', 'conv_2/weights_2'), convert_ddn),
)


def detect(state):
    """The ``OfficialFormat`` whose signature keys ``state`` has, or None."""
    return next((fmt for fmt in FORMATS if all(key in state for key in fmt.signature)), None)


def closest(state):
    """``(format, missing signature keys)`` of the format ``state`` comes nearest to."""
    scored = [(sum(key in state for key in fmt.signature) / len(fmt.signature), fmt) for fmt in FORMATS]
    _, fmt = max(scored, key=lambda item: item[0])
    return fmt, [key for key in fmt.signature if key not in state]


def convert(fmt, state):
    """``fmt.convert(state)`` with a failure reported as a ``WeightsError`` naming the format."""
    try:
        return fmt.convert(state)
    except (WeightsError, KeyError, IndexError, RuntimeError) as error:
        detail = f'missing key {error}' if isinstance(error, KeyError) else str(error)
        raise WeightsError(f'looks like a {fmt.name} checkpoint ({fmt.source}) but does not convert: {detail}') \
            from error
