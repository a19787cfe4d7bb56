"""`serve` keeps what the start made out of later garbage collections."""

from __future__ import annotations

import gc

from bridge.__main__ import _freeze_startup_objects


async def test_the_start_s_objects_are_frozen_once_the_app_has_started() -> None:
    before = gc.get_freeze_count()
    try:
        await _freeze_startup_objects(object())
        assert gc.get_freeze_count() > before
        # Objects made afterwards are collected as usual.
        assert gc.isenabled()
    finally:
        gc.unfreeze()
