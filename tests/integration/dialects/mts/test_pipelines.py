"""MPS pipelines through both official SDKs: add, search, query, pause/resume, notify config,
delete; the same pipeline seen the same way by either SDK and by the core."""

from __future__ import annotations

import json

import pytest
from alibabacloud_mts20140618 import models as tea
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkmts.request.v20140618.AddPipelineRequest import AddPipelineRequest
from aliyunsdkmts.request.v20140618.DeletePipelineRequest import DeletePipelineRequest
from aliyunsdkmts.request.v20140618.QueryPipelineListRequest import QueryPipelineListRequest
from aliyunsdkmts.request.v20140618.SearchPipelineRequest import SearchPipelineRequest
from aliyunsdkmts.request.v20140618.UpdatePipelineRequest import UpdatePipelineRequest

from app.core.pipelines import NotifyTarget, PipelineState
from tests.integration.dialects.mts.conftest import TENANT, Stack, call


def add(stack: Stack, name: str, notify: dict[str, str] | None = None) -> dict[str, object]:
    req = AddPipelineRequest()
    req.set_Name(name)
    if notify is not None:
        req.set_NotifyConfig(json.dumps(notify))
    return call(stack.classic(), req)["Pipeline"]


def test_add_with_either_sdk_and_read_back_with_the_other(stack: Stack) -> None:
    classic = add(stack, "classic-one", {"QueueName": "done-q"})
    assert classic["Name"] == "classic-one" and classic["State"] == "Active" and classic["Speed"] == "Standard"
    assert classic["NotifyConfig"] == {"QueueName": "done-q"}
    stored = stack.services.snapshots.get_pipeline(TENANT, str(classic["Id"]))
    assert stored.notify == NotifyTarget(queue="done-q") and stored.tenant == TENANT

    made = stack.tea().add_pipeline(tea.AddPipelineRequest(name="tea-one", notify_config='{"Topic": "done-t"}'))
    assert made.status_code == 200 and made.body.pipeline.notify_config.topic == "done-t"
    tea_id = made.body.pipeline.id

    req = QueryPipelineListRequest()
    req.set_PipelineIds(f"{tea_id},nonexistent0001")
    body = call(stack.classic(), req)
    assert [p["Id"] for p in body["PipelineList"]["Pipeline"]] == [tea_id]
    assert body["PipelineList"]["Pipeline"][0]["NotifyConfig"] == {"Topic": "done-t"}
    assert body["NonExistPids"] == {"String": ["nonexistent0001"]}

    got = stack.tea().query_pipeline_list(tea.QueryPipelineListRequest(pipeline_ids=str(classic["Id"])))
    [p] = got.body.pipeline_list.pipeline
    assert p.name == "classic-one" and p.notify_config.queue_name == "done-q" and p.state == "Active"
    assert got.body.non_exist_pids.string == []


def test_pause_resume_and_search_by_state_with_paging(stack: Stack) -> None:
    ids = [str(add(stack, f"search-{i}")["Id"]) for i in range(3)]
    paused = stack.tea().update_pipeline(tea.UpdatePipelineRequest(pipeline_id=ids[1], state="Paused", name="renamed"))
    assert paused.body.pipeline.state == "Paused" and paused.body.pipeline.name == "renamed"
    assert stack.services.snapshots.get_pipeline(TENANT, ids[1]).state is PipelineState.PAUSED

    def search(state: str, page: int = 1, size: int = 10) -> dict[str, object]:
        req = SearchPipelineRequest()
        req.set_State(state)
        req.set_PageNumber(page)
        req.set_PageSize(size)
        return call(stack.classic(), req)

    paused_ids = [p["Id"] for p in search("Paused")["PipelineList"]["Pipeline"]]  # type: ignore[index]
    assert ids[1] in paused_ids and ids[0] not in paused_ids
    everything = search("All", size=100)
    all_ids = [p["Id"] for p in everything["PipelineList"]["Pipeline"]]  # type: ignore[index]
    assert set(ids) <= set(all_ids) and everything["TotalCount"] == len(all_ids)
    first, second = search("All", 1, 2), search("All", 2, 2)
    assert first["PageNumber"] == 1 and first["PageSize"] == 2 and len(first["PipelineList"]["Pipeline"]) == 2  # type: ignore[index,arg-type]
    assert not {p["Id"] for p in first["PipelineList"]["Pipeline"]} & {  # type: ignore[index]
        p["Id"]
        for p in second["PipelineList"]["Pipeline"]  # type: ignore[index]
    }
    tea_search = stack.tea().search_pipeline(tea.SearchPipelineRequest(state="Paused", page_size=50))
    assert ids[1] in [p.id for p in tea_search.body.pipeline_list.pipeline]
    assert all(p.state == "Paused" for p in tea_search.body.pipeline_list.pipeline)

    req = UpdatePipelineRequest()
    req.set_PipelineId(ids[1])
    req.set_State("Active")
    req.set_NotifyConfig('{"QueueName": "later-q"}')
    resumed = call(stack.classic(), req)["Pipeline"]
    assert resumed["State"] == "Active" and resumed["NotifyConfig"] == {"QueueName": "later-q"}
    cleared = stack.tea().update_pipeline(tea.UpdatePipelineRequest(pipeline_id=ids[1], notify_config="{}"))
    assert cleared.body.pipeline.notify_config.to_map() == {}
    assert stack.services.snapshots.get_pipeline(TENANT, ids[1]).notify is None


def test_delete_then_it_is_gone_for_both_sdks(stack: Stack) -> None:
    pipeline_id = str(add(stack, "short-lived")["Id"])
    req = DeletePipelineRequest()
    req.set_PipelineId(pipeline_id)
    assert call(stack.classic(), req)["PipelineId"] == pipeline_id
    with pytest.raises(ClientException) as tea_err:
        stack.tea().delete_pipeline(tea.DeletePipelineRequest(pipeline_id=pipeline_id))
    assert tea_err.value.code == "InvalidParameter.ResourceNotFound" and tea_err.value.status_code == 404
    with pytest.raises(ServerException) as classic_err:
        call(stack.classic(), req)
    assert classic_err.value.get_error_code() == "InvalidParameter.ResourceNotFound"
    assert classic_err.value.get_http_status() == 404


def test_bad_pipeline_parameters_name_the_parameter(stack: Stack) -> None:
    with pytest.raises(ClientException) as err:
        stack.tea().add_pipeline(tea.AddPipelineRequest(name="x", notify_config='{"Topic": "a", "QueueName": "b"}'))
    assert err.value.code == "InvalidParameter.NotifyConfig"
    with pytest.raises(ClientException) as err:
        stack.tea().add_pipeline(tea.AddPipelineRequest(name="x" * 200))
    assert err.value.code == "InvalidParameter.Name"
    with pytest.raises(ClientException) as err:
        stack.tea().update_pipeline(tea.UpdatePipelineRequest(pipeline_id="default", state="Paused"))
    assert err.value.code == "InvalidParameter.PipelineId"
    with pytest.raises(ClientException) as err:
        stack.tea().search_pipeline(tea.SearchPipelineRequest(state="Sleeping"))
    assert err.value.code == "InvalidParameter.State"
    with pytest.raises(ClientException) as err:
        stack.tea().add_pipeline(tea.AddPipelineRequest())
    assert err.value.code == "MissingName"
