"""Synthetic checkpoints in the authors' key layouts (random values, small widths), as their files
store them: PReNet's plain state dicts, BRN's ``module.`` prefixes, RESCAN's and SPANet's
``{'net': ..., 'clock': ..., 'opt': ...}`` containers."""
import torch


def _conv(state, name, out_ch, in_ch, k=3, bias=True):
    state[f'{name}.weight'] = torch.randn(out_ch, in_ch, k, k) * 0.1
    if bias:
        state[f'{name}.bias'] = torch.randn(out_ch) * 0.1


def prenet(feat=8, recurrent='lstm', shared=False, stage_input='concat'):
    """csdwren/PReNet networks.py: PReNet, PReNet_r, PRN, PRN_r, PReNet_GRU, PReNet_x."""
    state = {}
    _conv(state, 'conv0.0', feat, 6 if stage_input == 'concat' else 3)
    for i in range(1, 2 if shared else 6):
        _conv(state, f'res_conv{i}.0', feat, feat)
        _conv(state, f'res_conv{i}.2', feat, feat)
    gates = {'lstm': 'ifgo', 'gru': 'zbg', 'none': ''}[recurrent]
    for gate in gates:
        _conv(state, f'conv_{gate}.0', feat, 2 * feat)
    _conv(state, 'conv.0', 3, feat)
    return state


def brn(feat=8):
    """csdwren/RecDerain generator.py BRN, saved from DataParallel (``module.`` prefix)."""
    state = {}
    for suffix, in_ch in (('', 9), ('_r', 6)):
        _conv(state, f'conv0{suffix}.0', feat, in_ch)
        for i in range(1, 6):
            _conv(state, f'res_conv{i}{suffix}.0', feat, feat)
            _conv(state, f'res_conv{i}{suffix}.2', feat, feat)
        for gate in 'ifgo':
            _conv(state, f'conv_{gate}{suffix}.0', feat, 3 * feat)
    _conv(state, 'conv.0', 3, feat)
    _conv(state, 'conv_r.0', 3, feat)
    return {f'module.{key}': value for key, value in state.items()}


def rescan(feat=8, depth=5, se_hidden=6):
    """XiaLiPKU/RESCAN config/model.py with GRU units, in its training container."""
    state = {}
    for i in range(depth - 2):
        for gate in 'zrn':
            _conv(state, f'rnns.{i}.conv_x{gate}', feat, 3 if i == 0 else feat)
            _conv(state, f'rnns.{i}.conv_h{gate}', feat, feat)
        state[f'rnns.{i}.se.fc.0.weight'] = torch.randn(se_hidden, feat) * 0.1
        state[f'rnns.{i}.se.fc.0.bias'] = torch.randn(se_hidden) * 0.1
        state[f'rnns.{i}.se.fc.2.weight'] = torch.randn(feat, se_hidden) * 0.1
        state[f'rnns.{i}.se.fc.2.bias'] = torch.randn(feat) * 0.1
    _conv(state, 'dec.0', feat, feat)
    state.update({
        'dec.1.fc.0.weight': torch.randn(se_hidden, feat),
        'dec.1.fc.0.bias': torch.randn(se_hidden),
        'dec.1.fc.2.weight': torch.randn(feat, se_hidden),
        'dec.1.fc.2.bias': torch.randn(feat)
    })
    _conv(state, 'dec.3', 3, feat, k=1)
    return {'net': state, 'clock': 100, 'opt': {'state': {}, 'param_groups': []}}


def spanet(feat=8):
    """stevewongv/SPANet SPANet.py in its training container (convolutions without bias)."""
    state = {}
    _conv(state, 'conv_in.0', feat, 3, bias=False)
    for irnn in ('irnn1', 'irnn2'):
        for direction in ('left', 'right', 'up', 'down'):
            state[f'SAM1.{irnn}.{direction}_weight.weight'] = torch.rand(feat, 1, 1, 1)
            state[f'SAM1.{irnn}.{direction}_weight.bias'] = torch.randn(feat) * 0.1
    _conv(state, 'SAM1.conv_in', feat, feat, bias=False)
    _conv(state, 'SAM1.conv2', feat, 4 * feat, bias=False)
    _conv(state, 'SAM1.conv3', feat, 4 * feat, bias=False)
    _conv(state, 'SAM1.attention_layer.conv1', feat // 2, feat)
    _conv(state, 'SAM1.attention_layer.conv2', feat // 2, feat // 2)
    _conv(state, 'SAM1.attention_layer.conv3', 4, feat // 2, k=1)
    _conv(state, 'SAM1.conv_out', 1, feat, k=1, bias=False)
    for i in range(1, 18):
        _conv(state, f'res_block{i}.group1.conv1', feat, feat, k=1, bias=False)
        _conv(state, f'res_block{i}.group1.conv2', feat, feat, bias=False)
        _conv(state, f'res_block{i}.group1.conv3', feat, feat, k=1, bias=False)
    _conv(state, 'conv_out.0', 3, feat, bias=False)
    return {'net': state, 'clock': 40000, 'opt': {'state': {}, 'param_groups': []}}


def _prox(state, name, kind, channels, num_res, threshold=False):
    for i in range(1, num_res + 1):
        for conv, bn in ((0, 1), (3, 4)):
            _conv(state, f'{name}.res{kind}{i}.{conv}', channels, channels)
            state[f'{name}.res{kind}{i}.{bn}.weight'] = torch.rand(channels) + 0.5
            state[f'{name}.res{kind}{i}.{bn}.bias'] = torch.randn(channels) * 0.1
            state[f'{name}.res{kind}{i}.{bn}.running_mean'] = torch.randn(channels) * 0.1
            state[f'{name}.res{kind}{i}.{bn}.running_var'] = torch.rand(channels) + 0.5
            state[f'{name}.res{kind}{i}.{bn}.num_batches_tracked'] = torch.tensor(7)
    if threshold:
        state[f'{name}.tau'] = torch.rand(1, channels, 1, 1)


def rcdnet(stages=3, num_m=4, num_z=4, num_res=1):
    """hongwang01/RCDNet rcdnet.py Mainnet (with its unused eta1 and mnet)."""
    state = {
        'eta1': torch.ones(1),
        'eta2': torch.full((1, ), 5.),
        'eta11': torch.rand(stages - 1, 1),
        'eta12': torch.rand(stages - 1, 1) * 5,
        'weight0': torch.rand(3, num_m, 9, 9) / 81,
        'conv': torch.rand(stages - 1, 3, num_m, 9, 9) / 81,
        'w_z_f': torch.rand(num_z, 3, 3, 3) / 9,
        'tau': torch.ones(1)
    }
    _prox(state, 'xnet', 'x', num_z + 3, num_res)
    _prox(state, 'mnet', 'm', num_m, num_res, threshold=True)
    for stage in range(stages):
        _prox(state, f'x_stage.{stage}', 'x', num_z + 3, num_res)
        _prox(state, f'm_stage.{stage}', 'm', num_m, num_res, threshold=True)
    _prox(state, 'fxnet', 'x', num_z + 3, num_res)
    return state
