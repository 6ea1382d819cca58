"""Pins a benchmark and the processes it starts to one CPU core.

A script that times OpenCV in itself and our binary in a child would
otherwise let the two land on different cores, and on a virtual machine
the cores' speeds differ with the host's load: on our 2-core VM the same
Gaussian took 10.6 ms on one vCPU and 17.5 ms on the other, which made
ratios swing from 0.7 to 1.3 between runs.
"""
import os


def pin() -> int:
    """Pins this process (and its future children) to the lowest core it
    may run on, and returns that core."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core
