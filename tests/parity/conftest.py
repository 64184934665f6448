"""Parity tests compare bits: one thread and deterministic algorithms, restored afterwards."""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def deterministic_cpu():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)
