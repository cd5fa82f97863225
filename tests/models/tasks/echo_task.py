"""A three-sample inspect task for the overseer provider tests: ``inspect eval echo_task.py --model overseer/...``."""

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig
from inspect_ai.scorer import includes
from inspect_ai.solver import generate, system_message


@task
def echo_task(max_tokens: int = 8) -> Task:
    """Short questions a tiny random model cannot answer; the test checks the pipeline, not the scores."""
    samples = [
        Sample(input="Is Paris in France? Please answer yes or no.", target="yes", id="paris"),
        Sample(input="Is Tokyo in Germany? Please answer yes or no.", target="no", id="tokyo"),
        Sample(input="What is the answer?", target="answer", id="answer"),
    ]
    return Task(
        dataset=MemoryDataset(samples, name="echo"),
        solver=[system_message("Answer in one word."), generate()],
        scorer=includes(),
        config=GenerateConfig(max_tokens=max_tokens),
    )
