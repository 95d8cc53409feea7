"""The page of ``basicsr web`` (Gradio): a photo in, several models' results out, side by side.

Runs are queued one at a time (one network on the CPU at once); each browser session has its own
folder of results and its own cancel, and errors show as the one line the CLI prints.
"""
import gradio as gr
import logging
import os
import shutil
import tempfile
import threading

from mh2f_plugin.errors import OptionsError, user_message
from mh2f_plugin.models.derain_model import fits_niqe
from mh2f_plugin.models.scoring import RAINY, draw_photo_figure, niqe
from mh2f_plugin.web.jobs import Cancelled, ModelChoice, network_choice, read_photo, typed_checkpoint, zoo_choices

MAX_MODELS = 4
PHOTO_TYPES = ['.png', '.jpg', '.jpeg', '.webp', '.bmp', '.tif', '.tiff']
CHECKPOINT_TYPES = ['.pth', '.pt', '.ckpt']
QUEUE_SIZE = 16
logger = logging.getLogger(__name__)


class Sessions:
    """A results folder and a cancel flag per browser session, under ``root``."""

    def __init__(self, root):
        self.root = root
        self.lock = threading.Lock()
        self.items = {}

    def start(self, key):
        """``(folder, cancel)`` for a new run of session ``key``: its last run's folder removed."""
        self.close(key)
        with self.lock:
            self.items[key] = tempfile.mkdtemp(dir=self.root), threading.Event()
            return self.items[key]

    def cancel(self, key):
        with self.lock:
            if key in self.items:
                self.items[key][1].set()

    def close(self, key):
        with self.lock:
            folder, cancel = self.items.pop(key, (None, None))
        if folder:
            cancel.set()
            shutil.rmtree(folder, ignore_errors=True)


def one_line(error):
    """What the page shows for ``error``: the CLI's one line, or a short note for a bug of ours (logged)."""
    message = user_message(error)
    if message is None:
        logger.exception('basicsr web: unexpected error', exc_info=error)
        return f'error: an unexpected {type(error).__name__} (a bug; the server log has its traceback)'
    return f'error: {message}'


def chosen_models(zoo_names, typed_path, uploaded, arch, experiment, folders, experiments):
    """The ``ModelChoice`` of each model picked on the page, in the page's order."""
    choices = [ModelChoice(name, name) for name in zoo_names or ()]
    if (typed_path or '').strip():
        choices.append(typed_checkpoint(typed_path.strip(), arch, folders))
    if uploaded:
        choices.append(ModelChoice(os.path.basename(uploaded), uploaded, network_choice(arch)))
    if experiment:
        choices.append(experiments[experiment])
    labels = [choice.label for choice in choices]
    for index, choice in enumerate(choices):
        if labels.index(choice.label) != index:
            choices[index] = ModelChoice(f'{choice.label} ({index + 1})', choice.weights, choice.network_opt)
    return choices


def build_page(args, restorer, sessions, examples, experiments):
    """The ``gr.Blocks`` page: ``restorer`` runs the models, ``examples`` are photo paths, ``experiments``
    maps experiment names to their latest ``ModelChoice``."""
    with gr.Blocks(title='MH2F deraining', delete_cache=(3600, 3600)) as page:
        gr.Markdown('## Derain a photo\nDrop a rainy photo, choose models, and compare their results with the '
                    'input. One network runs at a time; other users wait in the queue.')
        with gr.Row():
            with gr.Column():
                photo = gr.File(label='Rainy photo', file_types=PHOTO_TYPES, type='filepath', elem_id='photo')
                preview = gr.Image(label='Input', interactive=False, elem_id='preview')
                gr.Examples([[path] for path in examples], inputs=[photo], label='Examples')
            with gr.Column():
                zoo_models = gr.Dropdown(
                    zoo_choices(args.zoo_dir), multiselect=True, label='Zoo models (trained on)', elem_id='zoo')
                typed = gr.Textbox(
                    label='A checkpoint on the server: path' +
                    (f" (inside {', '.join(args.folder)})" if args.folder else ' (start with --folder DIR to allow)'),
                    elem_id='typed')
                uploaded = gr.File(
                    label='or upload a checkpoint', file_types=CHECKPOINT_TYPES, type='filepath', elem_id='upload')
                arch = gr.Textbox(
                    label="Its network, where the file does not name it: NAME or 'NAME:{yaml}' (default MH2FNet)",
                    elem_id='arch')
                experiment = gr.Dropdown(
                    [''] + sorted(experiments), value='', label="An experiment's latest model", elem_id='experiment')
                with gr.Row():
                    run = gr.Button('Derain', variant='primary', elem_id='run')
                    cancel = gr.Button('Cancel', elem_id='cancel')
        status = gr.Markdown(elem_id='status')
        slots = []
        with gr.Row(elem_id='results'):
            for index in range(MAX_MODELS):
                with gr.Column(visible=False) as box:
                    slider = gr.ImageSlider(label='before / after', type='numpy', elem_id=f'slider{index}')
                    info = gr.Markdown(elem_id=f'info{index}')
                    download = gr.DownloadButton('Download', elem_id=f'download{index}')
                slots.append((box, slider, info, download))
        figure = gr.Image(label='Zoomed where the methods differ most', visible=False, elem_id='figure')
        outputs = [status, figure] + [component for slot in slots for component in slot]

        def show_photo(path):
            if not path:
                return None, ''
            try:
                return read_photo(path).rgb, ''
            except Exception as error:
                return None, one_line(error)

        def derain(path,
                   zoo_names,
                   typed_path,
                   uploaded_path,
                   arch_text,
                   experiment_name,
                   request: gr.Request,
                   progress=gr.Progress()):
            folder, cancelled = sessions.start(request.session_hash)
            shown = {component: gr.update() for component in outputs}
            shown.update({slot[0]: gr.update(visible=False) for slot in slots})
            shown[figure] = gr.update(visible=False, value=None)
            try:
                if not path:
                    raise OptionsError('no photo: drop one, or pick an example')
                photo = read_photo(path)
                models = chosen_models(zoo_names, typed_path, uploaded_path, arch_text, experiment_name, args.folder,
                                       experiments)
                if not models:
                    raise OptionsError('no model: pick a zoo model, a checkpoint or an experiment')
                if len(models) > MAX_MODELS:
                    raise OptionsError(f'{len(models)} models: the page shows {MAX_MODELS} at most')
            except Exception as error:
                shown[status] = one_line(error)
                yield shown
                return
            results, lines = [], []
            for index, (choice, (box, slider, info, download)) in enumerate(zip(models, slots)):
                desc = f'{choice.label} ({index + 1} of {len(models)})'
                progress(index / len(models), desc=desc)
                shown[status] = f'running {desc}'
                yield shown

                def on_tile(done, total, index=index, desc=desc):
                    progress((index + done / total) / len(models), desc=f'{desc}: tile {done} of {total}')

                try:
                    result = restorer.run(choice, photo, folder, cancelled, on_tile)
                except Cancelled:
                    shown[status] = 'cancelled'
                    yield shown
                    return
                except Exception as error:
                    lines.append(f'{choice.label}: {one_line(error)}')
                    shown[box] = gr.update(visible=True)
                    shown[slider] = gr.update(value=None)
                    shown[info] = f'**{choice.label}**: {one_line(error)}'
                    shown[download] = gr.update(visible=False)
                    continue
                results.append(result)
                score = 'n/a (photo too small)' if result.niqe is None else f'{result.niqe:.3f}'
                shown[box] = gr.update(visible=True)
                shown[slider] = gr.update(value=(photo.rgb, result.rgb), label=f'input / {choice.label}')
                shown[info] = f'**{choice.label}**: NIQE {score} (lower is better), {result.seconds:.2f} s'
                shown[download] = gr.update(value=result.path, label=f'Download {choice.label}', visible=True)
            if results:
                target = os.path.join(folder, 'figure.png')
                rainy = photo.rgb[..., ::-1]
                scores = {result.label: result.niqe for result in results}
                scores[RAINY] = niqe(rainy, photo.name) if fits_niqe(*rainy.shape[:2]) else None
                draw_photo_figure(target, rainy, [(r.label, r.rgb[..., ::-1]) for r in results], scores)
                shown[figure] = gr.update(value=target, visible=True)
            shown[status] = '\n\n'.join([f'done: {len(results)} of {len(models)} models'] + lines)
            yield shown

        def stop(request: gr.Request):
            sessions.cancel(request.session_hash)

        def leave(request: gr.Request):
            sessions.close(request.session_hash)

        photo.change(show_photo, [photo], [preview, status], queue=False)
        event = run.click(derain, [photo, zoo_models, typed, uploaded, arch, experiment], outputs)
        cancel.click(stop, None, None, cancels=[event], queue=False)
        page.unload(leave)
    return page.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
