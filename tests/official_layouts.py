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


def vrgnet(feat=8):
    """hongwang01/VRGNet prenet.py (``derainet.`` prefix): PReNet with a 6-channel last-stage head."""
    state = prenet(feat)
    _conv(state, 'convfinal.0', 6, feat)
    return {f'derainet.{key}': value for key, value in state.items()}


def mardnet(feat=8, blocks=2):
    """cxtalk/MARD-Net networks.py."""
    state, hidden = {}, feat // 4
    _conv(state, 'entry', feat, 3)
    for k in range(1, blocks + 1):
        for name, size in (('x1_1', 3), ('x2_1', 5), ('x1_2', 3), ('x2_2', 5)):
            _conv(state, f'b{k}.{name}.conv', feat, feat, k=size)
        _conv(state, f'b{k}.out1', feat, 2 * feat, k=1)
        _conv(state, f'b{k}.out2', feat, feat)
        state.update({
            f'b{k}.se.fc.0.weight': torch.randn(hidden, feat) * 0.1,
            f'b{k}.se.fc.0.bias': torch.randn(hidden) * 0.1,
            f'b{k}.se.fc.2.weight': torch.randn(feat, hidden) * 0.1,
            f'b{k}.se.fc.2.bias': torch.randn(feat) * 0.1
        })
        _conv(state, f'b{k}.sp.head.0', hidden, feat, bias=False)
        _conv(state, f'b{k}.sp.midd.0', hidden, hidden, bias=False)
        _conv(state, f'b{k}.sp.tail', 1, hidden, bias=False)
        _conv(state, f'c{k}.body.0', feat, feat * (k + 1), k=1)
    _conv(state, 'exit', 3, feat)
    return state


def jordere(feat=8, blocks=1):
    """flyywh/JORDER-E testing_practical/src/model/jorder_e.py: two stages."""
    state = {}
    for s in ('jorder1', 'jorder2'):
        _conv(state, f'{s}.encoder', feat, 6)
        for r in range(1, blocks + 1):
            for conv in range(1, 7):
                _conv(state, f'{s}.updater.res{r}.conv{conv}', feat, feat)
        for kind, channels in (('mask', 2), ('level', 3)):
            _conv(state, f'{s}.{kind}_estimator1', feat // 4, feat)
            _conv(state, f'{s}.{kind}_estimator2', channels, feat // 4)
            for role in ('w', 'b'):
                _conv(state, f'{s}.{kind}_F_{role}_encoder1', feat // 2, channels)
                _conv(state, f'{s}.{kind}_F_{role}_encoder2', feat, feat // 2)
        _conv(state, f'{s}.decoder.0', feat, feat)
        _conv(state, f'{s}.decoder.1', 3, feat)
    return state


def nledn(feat=8, growth=4):
    """AlexHex7/NLEDN lib/NLEDN.py: up_1..3 (encoder), down_3 (global), down_2, down_1 (decoder)."""
    state = {}
    _conv(state, 'conv1', feat, 3)
    _conv(state, 'conv2', feat, feat)
    for block in ('up_1', 'up_2', 'up_3', 'down_3', 'down_2', 'down_1'):
        non_local = f'{block}.non_local' if block == 'down_3' else f'{block}.region_non_local.non_local_block'
        for name in ('g.0', 'theta', 'phi.0'):
            _conv(state, f'{non_local}.{name}', growth, feat, k=1)
        _conv(state, f'{non_local}.W', feat, growth, k=1)
        for i in range(4):
            _conv(state, f'{block}.group_{i}.0', growth, feat + i * growth)
        _conv(state, f'{block}.fusion.0', feat, feat + 4 * growth, k=1)
    _conv(state, 'down_2_fusion', feat, 2 * feat, k=1)
    _conv(state, 'down_1_fusion', feat, 2 * feat, k=1)
    _conv(state, 'fusion.0', feat, 3 * feat, k=1)
    _conv(state, 'fusion.1', feat, feat)
    _conv(state, 'final_conv.0', 3, feat)
    return state


def _batch_norm(state, name, channels):
    state[f'{name}.weight'] = torch.rand(channels) + 0.5
    state[f'{name}.bias'] = torch.randn(channels) * 0.1
    state[f'{name}.running_mean'] = torch.randn(channels) * 0.1
    state[f'{name}.running_var'] = torch.rand(channels) + 0.5
    state[f'{name}.num_batches_tracked'] = torch.tensor(7)


def _umrl_dense(state, name, in_ch, growth, k):
    _batch_norm(state, f'{name}.bn1', in_ch)
    _conv(state, f'{name}.conv1', 4 * growth, in_ch, k=1, bias=False)
    _batch_norm(state, f'{name}.bn2', 4 * growth)
    _conv(state, f'{name}.conv2', growth, 4 * growth, k=k, bias=False)


def _umrl_transition(state, name, in_ch, out_ch):
    _batch_norm(state, f'{name}.bn1', in_ch)
    state[f'{name}.conv1.weight'] = torch.randn(in_ch, out_ch, 1, 1) * 0.1  # ConvTranspose2d: (in, out, 1, 1)


def umrl():
    """rajeevyasarla/UMRL models/derain_mulcmp.py UMRL (its widths are fixed), with its unused
    batchnorm1, batchnorm20 and conf_res.conv_refin."""
    state = {}
    dense = {
        '1': (3, 29, 32),
        '2': (32, 32, 32),
        '3': (32, 32, 32),
        '3_1': (32, 32, 32),
        '3_2': (32, 32, 32),
        '4': (64, 32, 32),
        '5': (67, 32, 32),
        '6': (67, 16, 16),
        '6_1': (16, 16, 16)
    }
    for index, (in_ch, growth, out_ch) in dense.items():
        _umrl_dense(state, f'dense_block{index}', in_ch, growth, 5)
        _umrl_transition(state, f'trans_block{index}', in_ch + growth, out_ch)
    for name, in_ch, out_ch in (('conv_refin', 16, 16), ('refine3', 16, 3), ('refineclean2', 8, 3)):
        _conv(state, name, out_ch, in_ch)
    _conv(state, 'refineclean1', 8, 3, k=7)
    _batch_norm(state, 'batchnorm20', 20)
    _batch_norm(state, 'batchnorm1', 1)
    for step, in_ch in ((1, 64), (2, 32), (3, 32)):
        _umrl_dense(state, f'res_est.conv{step}', in_ch, 32, 3)
        _umrl_transition(state, f'res_est.trans_block{step}', in_ch + 32, 32)
    _conv(state, 'res_est.conv_refin', 16, 32)
    _conv(state, 'res_est.refine3', 3, 16)
    _conv(state, 'conf_res.conv1', 16, 35)
    for step in (2, 3):
        _umrl_dense(state, f'conf_res.conv{step}', 16, 16, 3)
        _umrl_transition(state, f'conf_res.trans_block{step}', 32, 16)
    _conv(state, 'conf_res.conv_refin', 16, 16)
    _conv(state, 'conf_res.refine3', 3, 16)
    return state


def ddn_tensorflow(prefix, feat=4, layers=6, sirr=False):
    """Writes a TensorFlow 1 checkpoint at ``prefix`` in the variable layout of DDN's training.py
    (``conv_K/{weights,biases,scale,beta}_K``, kernels HWIO, Adam's slots beside them; SIRR's files
    also hold ``conv_K_1/*`` of its unsupervised branch); returns ``{name: numpy array}``."""
    import numpy as np
    import tensorflow as tf
    rng = np.random.default_rng(0)
    values = {'beta1_power': np.float32(0.9), 'beta2_power': np.float32(0.999)}
    for k in range(1, layers + 1):
        in_ch, out_ch = (3 if k == 1 else feat), (3 if k == layers else feat)
        layer = {
            f'conv_{k}/weights_{k}': rng.normal(0, 0.1, (3, 3, in_ch, out_ch)),
            f'conv_{k}/biases_{k}': rng.normal(0, 0.1, out_ch),
            f'conv_{k}/scale_{k}': rng.uniform(0.5, 1.5, out_ch),
            f'conv_{k}/beta_{k}': rng.normal(0, 0.1, out_ch)
        }
        if sirr:
            layer.update({f'conv_{k}_1/{part}_{k}': rng.normal(0, 0.1, out_ch) for part in ('biases', 'scale', 'beta')})
        layer.update({f'{name}/Adam': np.zeros_like(value) for name, value in list(layer.items())})
        values.update(layer)
    values = {name: np.asarray(value, np.float32) for name, value in values.items()}
    with tf.Graph().as_default():
        variables = {name: tf.compat.v1.Variable(value, name=name.replace('/', '_')) for name, value in values.items()}
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(prefix))
    return values
