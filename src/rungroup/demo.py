"""Demo runs made by real training: small MLPs on scikit-learn's bundled digits data.

Two experiments, both quick on two CPU cores:

* cross-validation: 3 learning rates x 5 folds x 2 seeds, one run per fold, group `cv-<id>`;
* distributed: 4 worker processes and 1 eval process started with `RUNGROUP_RUN_GROUP` set,
  synchronising by averaging their weights through files after every epoch (local SGD), the
  way several processes of one job log into one group.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rungroup import tracking

PROJECT = "demo"
LEARNING_RATES = (0.001, 0.01, 0.1)
FOLDS = 5
SEEDS = (0, 1)
EPOCHS = 20
WORKERS = 4
BARRIER_TIMEOUT = 120.0


def _require_sklearn() -> Any:
    try:
        import sklearn
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the demo trains scikit-learn models: pip install 'rungroup[demo]'"
        ) from error
    return sklearn


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data / 16.0, data.target


def _model(lr: float, seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=(32,),
        solver="sgd",
        learning_rate_init=lr,
        momentum=0.9,
        batch_size=64,
        random_state=seed,
    )


def _scores(model: Any, features: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import log_loss

    probabilities = model.predict_proba(features)
    loss = log_loss(labels, probabilities, labels=np.arange(10))
    accuracy = float((probabilities.argmax(axis=1) == labels).mean())
    return float(loss), accuracy


def cross_validation(store_dir: Path, group: str, progress_bar: bool = False) -> None:
    """3 learning rates x 5 folds x 2 seeds; one run per fold."""
    from sklearn.model_selection import StratifiedKFold
    from tqdm.auto import tqdm

    features, labels = _digits()
    classes = np.arange(10)
    total = len(LEARNING_RATES) * len(SEEDS) * FOLDS
    bar = tqdm(total=total, desc="cross-validation runs", unit="run", disable=not progress_bar)
    for lr in LEARNING_RATES:
        for seed in SEEDS:
            folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
            for fold, (train, val) in enumerate(folds.split(features, labels)):
                config = {"lr": lr, "fold": fold, "seed": seed, "hidden": 32, "epochs": EPOCHS}
                with tracking.init(
                    project=PROJECT,
                    group=group,
                    job_type="train",
                    name=f"lr{lr}-seed{seed}-fold{fold}",
                    config=config,
                    tags=["demo", "cv"],
                    dir=store_dir,
                ) as run:
                    model = _model(lr, seed)
                    best_val_acc = 0.0
                    for epoch in range(EPOCHS):
                        model.partial_fit(features[train], labels[train], classes=classes)
                        train_loss, train_acc = _scores(model, features[train], labels[train])
                        val_loss, val_acc = _scores(model, features[val], labels[val])
                        run.log(
                            {
                                "train_loss": train_loss,
                                "train_acc": train_acc,
                                "val_loss": val_loss,
                                "val_acc": val_acc,
                            },
                            step=epoch,
                        )
                        best_val_acc = max(best_val_acc, val_acc)
                    run.summary["best_val_acc"] = best_val_acc
                bar.update()
    bar.close()


def _save_weights(folder: Path, name: str, model: Any) -> None:
    arrays = {f"w{i}": w for i, w in enumerate(model.coefs_)}
    arrays.update({f"b{i}": b for i, b in enumerate(model.intercepts_)})
    temporary = folder / f".{name}.tmp.npz"
    np.savez(temporary, **arrays)
    temporary.replace(folder / f"{name}.npz")


def _averaged_weights(folder: Path, epoch: int) -> dict[str, np.ndarray]:
    """Wait until every worker saved its weights for `epoch`, then average them."""
    paths = [folder / f"epoch{epoch}-worker{w}.npz" for w in range(WORKERS)]
    deadline = time.monotonic() + BARRIER_TIMEOUT
    while not all(p.exists() for p in paths):
        if time.monotonic() > deadline:
            missing = [p.name for p in paths if not p.exists()]
            raise TimeoutError(f"workers did not reach epoch {epoch}: missing {missing}")
        time.sleep(0.01)
    loaded = [dict(np.load(p)) for p in paths]
    return {key: np.mean([weights[key] for weights in loaded], axis=0) for key in loaded[0]}


def _set_weights(model: Any, weights: dict[str, np.ndarray]) -> None:
    layers = len(model.coefs_)
    model.coefs_ = [weights[f"w{i}"] for i in range(layers)]
    model.intercepts_ = [weights[f"b{i}"] for i in range(layers)]


def distributed_process(role: str, rank: int, sync_dir: Path) -> None:
    """One process of the distributed job; group and job type come from the environment."""
    from sklearn.model_selection import train_test_split

    features, labels = _digits()
    train_x, test_x, train_y, test_y = train_test_split(
        features, labels, test_size=0.25, random_state=0, stratify=labels
    )
    classes = np.arange(10)
    lr = 0.05
    config = {"lr": lr, "workers": WORKERS, "epochs": EPOCHS, "sync": "weight averaging"}
    if role == "worker":
        config["rank"] = rank
    with tracking.init(project=PROJECT, config=config, tags=["demo", "distributed"]) as run:
        model = _model(lr, seed=0)
        if role == "worker":
            shard_x, shard_y = train_x[rank::WORKERS], train_y[rank::WORKERS]
            model.partial_fit(shard_x[:1], shard_y[:1], classes=classes)  # allocate weights
            for epoch in range(EPOCHS):
                if epoch:
                    _set_weights(model, _averaged_weights(sync_dir, epoch - 1))
                model.partial_fit(shard_x, shard_y, classes=classes)
                loss, accuracy = _scores(model, shard_x, shard_y)
                run.log({"train_loss": loss, "train_acc": accuracy}, step=epoch)
                _save_weights(sync_dir, f"epoch{epoch}-worker{rank}", model)
        else:
            model.partial_fit(train_x[:1], train_y[:1], classes=classes)
            for epoch in range(EPOCHS):
                _set_weights(model, _averaged_weights(sync_dir, epoch))
                loss, accuracy = _scores(model, test_x, test_y)
                run.log({"val_loss": loss, "val_acc": accuracy}, step=epoch)


def distributed(store_dir: Path, group: str) -> None:
    """Start 4 workers and 1 evaluator as separate processes sharing one group."""
    with tempfile.TemporaryDirectory(prefix="rungroup-demo-sync-") as sync:
        _run_processes(store_dir, group, Path(sync))


def _run_processes(store_dir: Path, group: str, sync_dir: Path) -> None:
    processes = []
    for role, rank in [*(("worker", r) for r in range(WORKERS)), ("eval", 0)]:
        env = {
            **os.environ,
            "RUNGROUP_DIR": str(store_dir),
            "RUNGROUP_RUN_GROUP": group,
            "RUNGROUP_JOB_TYPE": role,
            "RUNGROUP_NAME": f"{role}-{rank}" if role == "worker" else "eval",
        }
        command = [sys.executable, "-m", "rungroup.demo", role, str(rank), str(sync_dir)]
        processes.append(subprocess.Popen(command, env=env))
    failed = [p.args for p in processes if p.wait() != 0]
    if failed:
        raise RuntimeError(f"distributed demo processes failed: {failed}")


def create_demo_runs(
    store_dir: str | os.PathLike[str] = "demo-runs", *, progress_bar: bool = True
) -> Path:
    """Train the demo runs into `store_dir` (a new cv-<id> and ddp-<id> group each time),
    saying on stderr what is being trained and how far it is (`progress_bar=False`: only
    the last line)."""
    _require_sklearn()
    root = Path(store_dir)
    root.mkdir(parents=True, exist_ok=True)

    def say(message: str) -> None:
        if progress_bar:
            print(message, file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's convergence warnings for partial_fit
        distributed_group = f"ddp-{tracking.generate_id(6)}"
        cv_group = f"cv-{tracking.generate_id(6)}"
        started = time.perf_counter()
        say(
            f"training small MLPs on scikit-learn's digits into {root.resolve()}:\n"
            f"  {distributed_group}: {WORKERS} worker processes and 1 evaluator averaging "
            f"their weights every epoch ({EPOCHS} epochs), in the background\n"
            f"  {cv_group}: {len(LEARNING_RATES)} learning rates x {len(SEEDS)} seeds x "
            f"{FOLDS} folds, {EPOCHS} epochs each"
        )
        workers = _start_background(root, distributed_group)
        cross_validation(root, cv_group, progress_bar=progress_bar)
        say(f"waiting for the distributed job ({distributed_group}) to finish")
        workers()
    print(
        f"demo runs written to {root.resolve()} in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return root


def _start_background(root: Path, group: str) -> Any:
    """Run the distributed job beside the cross-validation (two cores); return its join."""
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            distributed(root, group)
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=target, name="rungroup-demo-distributed")
    thread.start()

    def join() -> None:
        thread.join()
        if errors:
            raise errors[0]

    return join


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        distributed_process(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
