"""Train an adapter's stages in order; most models have one, CEPrompt has two (EVA, then CAT).

A later stage is built from the previous stage's model holding its validation-selected weights,
so the whole chain stays free of test data. All stages form one run; each stage's figures are kept.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from adapters.contract import Adapter, BuildContext
from harness.config import Recipe
from harness.run.loop import LoopResult, train


def stage_summary(outcome: LoopResult) -> dict:
    return dict(
        **outcome.selected.metrics,
        selected_epoch=outcome.selected_epoch,
        final_epoch=dict(epoch=len(outcome.history), **outcome.final.metrics, loss=outcome.final.loss),
        test_best_epoch_oracle=dict(epoch=outcome.oracle_epoch, **outcome.oracle),
        stopped_early_at_epoch=outcome.stopped_early,
        history=outcome.history,
    )


def train_stages(
    adapter: Adapter,
    ctx: BuildContext,
    recipe: Recipe,
    stage_recipes: dict[str, dict],
    run_loop: Callable[..., LoopResult] = train,
    on_stage: Callable[[str, Recipe], None] = lambda name, recipe: None,
    checkpoint_dir: Path | None = None,
    keep_selected: bool = False,
    **loop_args,
):
    """Return (final model, final stage's LoopResult, {stage: summary} when there are several stages).
    `keep_selected` keeps the last stage's selected weights too (`--save-model`)."""
    missing = [stage.name for stage in adapter.stages if stage.name not in stage_recipes]
    if missing:
        raise ValueError(f"no recipe for stage(s) {', '.join(missing)}; add [models.<name>.stages.<stage>] to benchmark.toml")
    chain = [(adapter.stage, adapter, recipe)]
    chain += [(s.name, s.adapter, Recipe.model_validate(stage_recipes[s.name])) for s in adapter.stages]
    model, outcome, summaries = None, None, {}
    for position, (name, stage_adapter, stage_recipe) in enumerate(chain):
        if model is not None:
            model.load_state_dict(outcome.selected_state)
        ctx = replace(ctx, previous=model, batch_size=stage_recipe.batch_size, epochs=stage_recipe.epochs)
        model = stage_adapter.build(ctx)
        on_stage(name, stage_recipe)
        outcome = run_loop(
            model, stage_adapter, recipe=stage_recipe, ctx=ctx, keep_selected=keep_selected or position < len(chain) - 1,
            checkpoint=checkpoint_dir / f"{name}.pt" if checkpoint_dir else None,
            keep_last_checkpoint=position < len(chain) - 1, **loop_args,
        )
        summaries[name] = stage_summary(outcome)
    return model, outcome, (summaries if len(chain) > 1 else {})
