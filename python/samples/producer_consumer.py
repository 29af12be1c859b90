#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""producer_consumer.py: samples/producer_consumer.c in Python, cell by
cell as in a notebook. The textbook bounded buffer with a bounded
mailbox instead of a shared array, semaphores and a mutex.

usage: PYTHONPATH=python python3 python/samples/producer_consumer.py [DELAY_MS]
With DELAY_MS the consumer waits that long before each receive, so the
mailbox fills up and the producer blocks: watch it with `kipcs --watch`.
"""
import os
import struct
import sys
import time

import kipc

BUFFER_SIZE = 4   # capacity of the mailbox
ITEMS = 12        # items the producer makes
delay = int(sys.argv[1]) / 1000 if len(sys.argv) > 1 else 0

# %% A kernel-owned mailbox: it exists until we destroy it (the `with`).
with kipc.Mailbox.create(capacity=BUFFER_SIZE, kernel_owned=True) as box:
    print(f"producer_consumer: mailbox {box.id} holds at most {BUFFER_SIZE} items", flush=True)

    # %% Producer: a child process sends ITEMS numbers, then -1 for "done".
    # send() blocks while the mailbox is full: the kernel counts the
    # "empty slots" that a semaphore counts in the shared-memory version.
    producer = os.fork()
    if producer == 0:
        try:
            for item in range(1, ITEMS + 1):
                box.send(struct.pack("i", item))
            box.send(struct.pack("i", -1))
        finally:
            os._exit(0)

    # %% Consumer: receive until "done", checking the order.
    expected = 1
    while True:
        if delay:
            time.sleep(delay)
        (item,) = struct.unpack("i", box.recv())
        if item == -1:
            break
        print(f"consumer: got item {item}")
        assert item == expected, "item out of order"
        expected += 1

    _, status = os.waitpid(producer, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and expected == ITEMS + 1
    print(f"producer_consumer: {ITEMS} items, in order, through {BUFFER_SIZE} slots")
