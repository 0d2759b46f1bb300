"""The judge cache: one SQLite file that several processes write at once without losing or corrupting replies."""

import multiprocessing as mp

from lima_eval.backends.base import Completion, LogprobRequest
from lima_eval.judging.cache import JudgeCache, cache_key

IDENT = {"backend": "openai", "model": "gpt-4o", "sampling": {"temperature": 0.0}, "seed": 0}


def msgs(i):
    return [{"role": "user", "content": f"item {i}"}]


def writer(path, start, n):
    cache = JudgeCache(path)
    for i in range(start, start + n, 10):
        cache.put_many([(cache_key(IDENT, msgs(j), None), Completion(text=f"reply {j}", usage={"prompt_tokens": j}))
                        for j in range(i, i + 10)])
    cache.close()


def test_concurrent_processes_write_one_cache(tmp_path):
    path = tmp_path / "c.sqlite"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=writer, args=(str(path), k * 200, 200)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = JudgeCache(path)
    assert len(cache) == 800
    keys = [cache_key(IDENT, msgs(j), None) for j in range(800)]
    got = cache.get_many(keys)
    assert len(got) == 800 and all(got[k].text == f"reply {j}" for j, k in enumerate(keys))


def test_key_changes_with_what_decides_the_reply(tmp_path):
    base = cache_key(IDENT, msgs(1), None)
    assert cache_key(IDENT, msgs(1), None) == base
    assert cache_key(IDENT | {"model": "gpt-4o-mini"}, msgs(1), None) != base
    assert cache_key(IDENT | {"seed": 1}, msgs(1), None) != base
    assert cache_key(IDENT, msgs(2), None) != base
    assert cache_key(IDENT | {"sampling": {"temperature": 0.7}}, msgs(1), None) != base
    assert cache_key(IDENT, msgs(1), LogprobRequest(top=5)) != base


def test_errors_are_not_cached_and_logprobs_round_trip(tmp_path):
    cache = JudgeCache(tmp_path / "c.sqlite")
    steps = [(" A", {" A": -0.1, " B": -2.5})]
    cache.put_many([("ok", Completion(text="Verdict: A", logprobs=steps)), ("bad", Completion(error="HTTP 500"))])
    got = cache.get_many(["ok", "bad"])
    assert set(got) == {"ok"} and got["ok"].logprobs == steps and cache.hits == 1
