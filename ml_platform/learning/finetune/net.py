"""The network being fine-tuned: a backbone with a named linear head, whatever its origin."""

from __future__ import annotations

from collections.abc import Iterator

import torch


class ClassifierNet(torch.nn.Module):
    """Logits from pixels; `features` are the head's inputs (for a linear probe).

    `body` is an EfficientNet-Lite (head `_fc`) or a transformers image classifier (head
    `classifier`, output `.logits`). Normalisation layers stay in eval mode while training
    (`train()` keeps them frozen): batches of a few images give noisy batch statistics and
    the pretrained running statistics are better than anything a small dataset can estimate.
    """

    def __init__(self, body: torch.nn.Module, head_name: str, *, transformers: bool = False):
        super().__init__()
        self.body = body
        self.head_name = head_name
        self.transformers = transformers
        if not isinstance(self.head, torch.nn.Linear):
            raise TypeError(f"{type(body).__name__}.{head_name} is not a linear layer")

    @property
    def head(self) -> torch.nn.Linear:
        head = getattr(self.body, self.head_name)
        assert isinstance(head, torch.nn.Linear)
        return head

    @property
    def num_classes(self) -> int:
        return int(self.head.out_features)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.transformers:
            logits: torch.Tensor = self.body(pixel_values=pixels).logits
            return logits
        out: torch.Tensor = self.body(pixels)
        return out

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The head's input for `pixels` (no gradient)."""
        captured: list[torch.Tensor] = []
        hook = self.head.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0]))
        try:
            with torch.no_grad():
                self(pixels)
        finally:
            hook.remove()
        return captured[0].detach()

    def head_parameters(self) -> Iterator[torch.nn.Parameter]:
        return self.head.parameters()

    def backbone_parameters(self) -> Iterator[torch.nn.Parameter]:
        head = {id(p) for p in self.head.parameters()}
        return (p for p in self.parameters() if id(p) not in head and p.requires_grad)

    def freeze_all_but_last_blocks(self, blocks: int) -> None:
        """Train only the last `blocks` MBConv blocks and the head (EfficientNet-Lite)."""
        stages = getattr(self.body, "_blocks", None)
        if not isinstance(stages, torch.nn.ModuleList):
            raise ValueError("train_blocks only applies to efficientnet_lite0")
        for parameter in self.body.parameters():
            parameter.requires_grad = False
        kept = list(stages)[len(stages) - blocks :] if blocks else []
        head_conv = [getattr(self.body, name) for name in ("_conv_head", "_bn1")]
        for module in [*kept, *head_conv, self.head]:
            for parameter in module.parameters():
                parameter.requires_grad = True

    def train(self, mode: bool = True) -> ClassifierNet:
        super().train(mode)
        for module in self.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm | torch.nn.LayerNorm):
                module.eval()
        return self
