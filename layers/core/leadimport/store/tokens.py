"""Lead tokens in Redis: one value per (company, owner, caller_id), read by an inbound call in one GET.

Key: `{prefix}:tokens:{company_id}:{owner_type}:{owner_id}:{e164}`. Every part of the key is an
integer, a fixed word or an E.164 number, so nothing from the file can reach the key. The value is
the lead's tokens as one JSON object, names and values verbatim. One `SET key json [PXAT expiry]`
per lead replaces the old tokens atomically (a new lead never inherits an old lead's tokens) and
sets the TTL to the lead's expiry in the same command: a third of the commands of DEL + HSET +
EXPIREAT. Stamping the same lead twice leaves the same state: idempotent by construction.
The pipeline is not a MULTI: keys of one chunk live in many hash slots, which a Redis Cluster
(ElastiCache Serverless) cannot put in one transaction. Set REDIS_CLUSTER=true for a cluster.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import redis

# What a Redis outage or failover looks like to redis-py (standalone and cluster clients).
_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterError, OSError)


class TokenStoreUnavailableError(RuntimeError):
    """Redis is down or timed out: a transient failure, the chunk is retried."""


class TokenStamp(NamedTuple):  # one per lead stamped: a named tuple costs a third of a frozen dataclass
    company_id: int
    owner_type: str
    owner_id: int
    phone: str
    tokens: dict[str, str]
    expires_at: datetime | None
    # The tokens as JSON when the caller serialized them already (the lead insert did): not done twice.
    encoded: bytes | None = None


class TokenStore:
    def __init__(self, url: str, key_prefix: str = "li", cluster: bool = False):
        self.url = url
        self.key_prefix = key_prefix
        self.cluster = cluster
        self._client: Any = None
        self._lock = threading.Lock()

    def key(self, company_id: int, owner_type: str, owner_id: int, phone: str) -> str:
        # store/leads.py builds the part after "tokens:" in SQL for the token check: keep the two alike
        return f"{self.key_prefix}:tokens:{int(company_id)}:{owner_type}:{int(owner_id)}:{phone}"

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                factory = redis.RedisCluster.from_url if self.cluster else redis.Redis.from_url
                self._client = factory(self.url, socket_timeout=10, socket_connect_timeout=5, decode_responses=True)
            return self._client

    def _reset(self) -> None:
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                except Exception:  # noqa: BLE001 - closing a broken client
                    pass
            self._client = None

    def stamp(self, stamps: Iterable[TokenStamp], batch: int = 1000) -> int:
        """Replace the tokens of each (owner, phone). Leads without expiry go in one MSET per batch (one
        command instead of one per key); expiring ones as SET ... PXAT in a pipeline."""
        count = 0
        try:
            plain: dict[str, bytes] = {}
            pipe = self.client.pipeline(transaction=False)
            expiring = 0
            for s in stamps:
                key = self.key(s.company_id, s.owner_type, s.owner_id, s.phone)
                value = s.encoded if s.encoded is not None else orjson.dumps(s.tokens)
                if s.expires_at is None:
                    plain[key] = value
                    if len(plain) >= batch:
                        self._mset(plain)
                        plain = {}
                else:
                    pipe.set(key, value, pxat=int(s.expires_at.timestamp() * 1000))
                    expiring += 1
                    if expiring % batch == 0:
                        pipe.execute()
                count += 1
            if plain:
                self._mset(plain)
            pipe.execute()
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc
        return count

    def _unavailable(self, exc: BaseException) -> TokenStoreUnavailableError:
        """Redis is down or failing over: drop the client (the next call reconnects) and say so."""
        self._reset()
        return TokenStoreUnavailableError(f"Redis unavailable: {exc}")

    def _mset(self, mapping: dict[str, bytes]) -> None:
        if self.cluster:
            self.client.mset_nonatomic(mapping)  # groups the keys by hash slot
        else:
            self.client.mset(mapping)

    def remove(self, keys: Iterable[tuple[int, str, int, str]]) -> None:
        """Drop the tokens of (company, owner_type, owner_id, phone) — used by undo and expiry."""
        names = [self.key(*k) for k in keys]
        if not names:
            return
        try:
            pipe = self.client.pipeline(transaction=False)  # one DEL per key: keys span cluster slots
            for i, name in enumerate(names, start=1):
                pipe.delete(name)
                if i % 1000 == 0:
                    pipe.execute()
            pipe.execute()
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc

    def missing(self, keys: list[str]) -> list[bool]:
        """For each token key without the prefix ("company:owner_type:owner_id:phone", as the database builds it
        for a page of leads): True when Redis has no tokens for it."""
        if not keys:
            return []
        head = f"{self.key_prefix}:tokens:"
        names = [head + k for k in keys]
        try:
            # Nearly always every key is there: one EXISTS of the whole page says so (it counts each name given;
            # the keys of live leads are distinct). A cluster spreads the keys over slots: one per key there.
            if not self.cluster and int(self.client.exists(*names)) == len(names):
                return [False] * len(names)
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.exists(name)
            return [not bool(found) for found in pipe.execute()]
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc

    def tokens_for(self, company_id: int, owner_type: str, owner_id: int, phone: str) -> dict[str, str]:
        """What an inbound call from `phone` on this owner gets: one GET."""
        try:
            raw = self.client.get(self.key(company_id, owner_type, owner_id, phone))
            return dict(json.loads(raw)) if raw else {}
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc


_shared: TokenStore | None = None


def shared_token_store() -> TokenStore:
    global _shared
    if _shared is None:
        from leadimport import settings

        s = settings.redis()
        _shared = TokenStore(s.url, s.key_prefix, cluster=s.cluster)
    return _shared


def reset_shared_token_store() -> None:
    global _shared
    _shared = None
