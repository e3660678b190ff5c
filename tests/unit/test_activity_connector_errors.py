"""activities.errors, shared by the fulfilment and parcel activities: a connector's permanent
refusal ends the activity for good (non-retryable ConnectorRefused naming the system and
status), a transient failure is left to Temporal's retries."""

import pytest
from temporalio.exceptions import ApplicationError

from activities.errors import permanent_errors_are_final
from connectors.errors import PermanentConnectorError, TransientConnectorError


async def test_a_permanent_refusal_is_a_final_connector_refused_naming_the_system() -> None:
    async def refused() -> str:
        raise PermanentConnectorError("carrier", "address rejected", status_code=422)

    with pytest.raises(ApplicationError) as raised:
        await permanent_errors_are_final(refused)

    assert raised.value.type == "ConnectorRefused"
    assert raised.value.non_retryable
    assert raised.value.details == ({"system": "carrier", "status_code": 422},)


async def test_a_transient_failure_propagates_for_temporal_to_retry() -> None:
    async def unreachable() -> str:
        raise TransientConnectorError("carrier", "timed out")

    with pytest.raises(TransientConnectorError):
        await permanent_errors_are_final(unreachable)


async def test_an_answer_is_returned_as_it_is() -> None:
    async def label() -> str:
        return "LBL-1"

    assert await permanent_errors_are_final(label) == "LBL-1"
