"""Keras backend selection and determinism settings, applied before Keras is first imported."""
from __future__ import annotations

import os
import platform
import sys


def threads() -> int:
    """Threads per training (``CH11_THREADS``, default 1: float reductions then do not depend on the
    core count, and parallel trainings share the cores without contention)."""
    return int(os.environ.get("CH11_THREADS", "1"))


def select(backend: str) -> None:
    """Make ``backend`` Keras' backend with ``threads()`` threads; must run before ``import keras``."""
    if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != backend:
        raise RuntimeError(f"Keras was imported with backend {os.environ.get('KERAS_BACKEND')!r} before "
                           f"ch11.training.backend.select({backend!r})")
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend == "jax":
        n = threads()
        os.environ["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'} "
                                   f"intra_op_parallelism_threads={n}")
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # several trainings share a GPU


def seed_everything(seed: int, mixed_precision: bool) -> None:
    """Seed Python, NumPy and the backend; TensorFlow: deterministic ops, ``threads()`` threads."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if not getattr(seed_everything, "configured", False):  # thread pools can be set once per process
            tf.config.threading.set_intra_op_parallelism_threads(threads())
            tf.config.threading.set_inter_op_parallelism_threads(threads())
            tf.config.experimental.enable_op_determinism()
            seed_everything.configured = True
    keras.backend.clear_session()  # fresh layer names for every seed's model
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
    else:
        seed_without_tensorflow(seed)
    if mixed_precision and devices()[0] == "GPU":
        keras.mixed_precision.set_global_policy("mixed_float16")


def seed_without_tensorflow(seed: int) -> None:
    """``keras.utils.set_random_seed`` without its TensorFlow seeding, which imports TensorFlow (a second
    XLA runtime, seconds of start-up) into every JAX training only to seed a library it does not use."""
    import random

    import numpy as np
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)


def devices() -> tuple[str, str]:
    """("GPU" or "CPU", a description: the GPU model, or the CPU model and its vector instruction sets)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        dev = jax.devices()[0]
        if dev.platform == "gpu":
            return "GPU", dev.device_kind
    else:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return "GPU", tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    return "CPU", cpu_description()


def cpu_description() -> str:
    """CPU model and the vector instruction sets that decide which kernels oneDNN/XLA pick."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name") and model in ("", platform.machine()):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return f"{model} [{' '.join(isa) or 'no AVX2'}]"


def versions() -> dict:
    """The versions of the selected backend's libraries, for each seed's info.json."""
    import keras

    if keras.backend.backend() == "jax":
        import jax
        import jaxlib

        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}
    import tensorflow as tf

    return {"tensorflow": tf.__version__}
