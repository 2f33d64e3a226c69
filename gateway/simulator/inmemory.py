"""An NMVS backend over the simulator's pure market, in memory: no XML, no HTTP, no socket.

For fast engine tests with an injected clock (the market's time source is the test's). It
answers as the Arvato client does against the simulator over HTTPS, which the backend contract
suite (``tests/nmvs/test_contract.py``) checks by running the same cases against both: the same
classification (:func:`gateway.nmvs.arvato.client.classified`), the same errors for the codes
that are raised, and the simulator's faults mapped to what the client sees over the wire — a
connection reset or an HTTP 500 is an answer that may have been processed, a rate limit is a
:class:`~gateway.nmvs.backend.NmvsRateLimitedError` with the server's delay.

``calls`` logs each request in the gateway's own terms (operation, serial, answer class) so
that tests need no protocol's use-case names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.codes.pack import PackIdentifier
from gateway.nmvs.arvato.client import bulk_pack, bulk_ready, classified, failure_for
from gateway.nmvs.arvato.returncodes import lookup
from gateway.nmvs.arvato.soap import BULK_RESULT_USE_CASE, BULK_USE_CASE, MANUAL_USE_CASE, USE_CASE
from gateway.nmvs.backend import (
    BulkResult,
    BulkTicket,
    NmvsAmbiguousError,
    NmvsBackend,
    NmvsPermanentError,
    NmvsRateLimitedError,
    NmvsResult,
    Notification,
    PingResult,
)
from gateway.simulator.faults import FaultInjector, FaultKind
from gateway.simulator.market import Answer, BulkRequest, Market, PackRequest, RequestHeader
from gateway.simulator.server import RATE_LIMIT_RETRY_AFTER_SECONDS
from gateway.vocabulary import AnswerClass, Operation


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the gateway would name it; ``answer_class`` None: no answer came back."""

    op: Operation | None  # None: a bulk result poll
    serial: str | None
    answer_class: AnswerClass | None


class MarketBackend:
    """:class:`~gateway.nmvs.backend.NmvsBackend` over a :class:`Market`, with its faults."""

    def __init__(
        self,
        market: Market,
        *,
        client_login_id: str = "SIMCLIENT1",
        user_id: str = "SIMUSER1",
        password: str = "Simulator-Pass1",  # noqa: S107 - the simulator's documented default
        faults: FaultInjector | None = None,
    ) -> None:
        self.market = market
        self.faults = faults or FaultInjector()
        self.calls: list[Call] = []
        self._account = (client_login_id, user_id, password)
        self._late: set[asyncio.Task[None]] = set()
        self._halted_by: str | None = None  # as the client: no send after a refused login

    def _header(self, client_trx_id: str) -> RequestHeader:
        return RequestHeader(*self._account, client_trx_id)

    async def execute(
        self,
        operation: Operation,
        pack: PackIdentifier,
        *,
        client_trx_id: str,
        ref_client_trx_id: str | None = None,
    ) -> NmvsResult:
        request = PackRequest(
            USE_CASE[operation],
            pack.scheme,
            pack.product_code,
            pack.serial,
            pack.batch,
            pack.expiry,
            ref_client_trx_id,
        )
        return await self._single(operation, request, client_trx_id)

    async def execute_manual(
        self,
        operation: Operation,
        scheme: str,
        product_code: str,
        serial: str,
        *,
        client_trx_id: str,
    ) -> NmvsResult:
        request = PackRequest(MANUAL_USE_CASE[operation], scheme, product_code, serial)
        return await self._single(operation, request, client_trx_id)

    async def _single(
        self, operation: Operation, request: PackRequest, client_trx_id: str
    ) -> NmvsResult:
        header = self._header(client_trx_id)
        answer = await self._exchange(
            request.use_case, operation, request.serial, lambda: self.market.single(header, request)
        )
        result = result_of(answer, client_trx_id)
        self.calls.append(Call(operation, request.serial, result.answer_class))
        return result

    async def submit_bulk(
        self, operation: Operation, packs: Sequence[PackIdentifier], *, client_trx_id: str
    ) -> BulkTicket:
        first = packs[0]
        request = BulkRequest(
            BULK_USE_CASE[operation],
            first.scheme,
            first.product_code,
            first.batch,
            first.expiry,
            tuple(p.serial for p in packs),
        )
        header = self._header(client_trx_id)
        answer = await self._exchange(
            request.use_case, operation, None, lambda: self.market.submit_bulk(header, request)
        )
        self.calls.append(Call(operation, None, lookup(answer.return_code).answer_class))
        return BulkTicket(answer.nmvs_trx_id, client_trx_id, answer.return_code, answer.description)

    async def bulk_result(self, ticket: BulkTicket, *, client_trx_id: str) -> BulkResult:
        header = self._header(client_trx_id)
        answer = await self._exchange(
            BULK_RESULT_USE_CASE,
            None,
            None,
            lambda: self.market.bulk_result(header, ticket.nmvs_trx_id)[0],
        )
        self.calls.append(Call(None, None, lookup(answer.return_code).answer_class))
        return BulkResult(
            ready=bulk_ready(answer.return_code),
            return_code=answer.return_code,
            description=answer.description,
            packs=tuple(
                bulk_pack(p.serial, p.return_code, p.state, p.reasons, ticket)
                for p in answer.bulk or ()
            ),
            server_time=answer.timestamp,
            notifications=_notifications(answer),
        )

    async def ping(self) -> PingResult:
        return PingResult("nmvs-gateway ping", 0.0, self.market.now())

    async def aclose(self) -> None:
        for task in list(self._late):
            task.cancel()
        await asyncio.gather(*self._late, return_exceptions=True)

    async def _exchange(
        self,
        use_case: str,
        operation: Operation | None,
        serial: str | None,
        run: Callable[[], Answer],
    ) -> Answer:
        """Run one request through the faults as the HTTP simulator would, then raise what the
        Arvato client raises for the answer's code."""
        if self._halted_by is not None:
            raise NmvsPermanentError(
                f"sending stopped after {self._halted_by} (user or password refused)",
                return_code=self._halted_by,
            )
        fault, delay = self.faults.draw()
        if delay:
            await asyncio.sleep(delay)
        if fault is not None and fault != "latency":
            self._apply(fault, use_case, operation, serial, run)
        answer = run()
        if lookup(answer.return_code).rate_limited:
            raise NmvsRateLimitedError(f"{use_case}: rate limited", return_code=answer.return_code)
        failure = failure_for(answer.return_code, f"{use_case} answered {answer.return_code}")
        if lookup(answer.return_code).stop_sending:
            self._halted_by = answer.return_code
        if failure is not None:
            self.calls.append(Call(operation, serial, None))
            raise failure
        return answer

    def _apply(
        self,
        fault: FaultKind,
        use_case: str,
        operation: Operation | None,
        serial: str | None,
        run: Callable[[], Answer],
    ) -> None:
        """A fault that ends the exchange: raise what the client would see."""
        lost = f"{use_case}: connection lost after the request was sent; it may have been processed"
        if fault == "rate_limit":
            self.market.record_rejection(None, use_case, "NMVS_FI_SE_CLI_01")
            self.calls.append(Call(operation, serial, AnswerClass.RATE_LIMITED))
            raise NmvsRateLimitedError(
                f"{use_case}: rate limited (HTTP 429)",
                retry_after=float(RATE_LIMIT_RETRY_AFTER_SECONDS),
                return_code="NMVS_FI_SE_CLI_01",
            )
        if fault in ("reset_after", "timeout_code"):
            run()  # processed; the answer is lost, or says it timed out
        elif fault == "apply_late":
            late = asyncio.get_running_loop().create_task(
                self._run_later(run, self.faults.plan.apply_late_ms / 1000)
            )
            self._late.add(late)
            late.add_done_callback(self._late.discard)
        self.calls.append(Call(operation, serial, None))
        # what the client reads: an answer saying it timed out, a SOAP fault, or a bare reset
        code = {"timeout_code": "NMVS_TI_TO_01", "http_500": "NMVS_ERROR"}.get(fault)
        raise NmvsAmbiguousError(lost, return_code=code)

    @staticmethod
    async def _run_later(run: Callable[[], Answer], seconds: float) -> None:
        await asyncio.sleep(seconds)
        run()


def _notifications(answer: Answer) -> tuple[Notification, ...]:
    return tuple(Notification(code, text) for code, text in answer.notifications)


def result_of(answer: Answer, client_trx_id: str) -> NmvsResult:
    """The market's answer to a single request as the Arvato client returns it."""
    return classified(
        answer.return_code,
        answer.description,
        state=answer.state,
        reasons=answer.reasons,
        nmvs_trx_id=answer.nmvs_trx_id,
        client_trx_id=client_trx_id,
        server_time=answer.timestamp,
        notifications=_notifications(answer),
        intermarket=answer.intermarket,
    )


def as_backend(backend: MarketBackend) -> NmvsBackend:
    """The backend seen through the interface the engine uses (mypy checks the conformance)."""
    return backend
