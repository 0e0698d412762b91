"""Encryption at rest with a configured key: what is on disk cannot be read, every route still reads it
(preview, training, prediction on both engines, evaluation, batch input and output, the re-profile of a
dataset whose column readings change, evaluations and batches with value warnings), a key that is not
configured or a file altered on disk is refused with a clear 503/409, and rotation keeps every version and
dataset loadable. Without a key nothing changes (the rest of the suite runs without one).

The files are made once for the module, in globex, under key A (committed: the job runner's monitor thread
uses its own connection), and removed at the end. The tests run in file order: rotation comes last.
"""
from __future__ import annotations

import io
from contextlib import contextmanager

import pandas as pd
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django_tenants.utils import schema_context

from mlplatform import encryption, filestore
from models_registry import loading
from models_registry.batch import run_batch
from models_registry.models import BatchPredictionJob, ModelVersion, RegisteredModel
from tests.training.conftest import csv_bytes, table, upload
from training.models import Dataset, TrainingJob
from training.runner import run_training_job

KEY_A, KEY_B = encryption.generate_key(), encryption.generate_key()
ID_A, ID_B = (encryption.parse_key(k).key_id for k in (KEY_A, KEY_B))
RECORD = {"x1": 0.4, "x2": 6.0, "color": "red"}


def keys(current: str = "", old: tuple[str, ...] = ()):
    loading.cache_clear()  # the serving cache would answer without reading the file
    return override_settings(STORAGE_ENCRYPTION_KEY=current, STORAGE_ENCRYPTION_OLD_KEYS=list(old))


@contextmanager
def quiet_broker():
    """Jobs are run in-process here: nothing goes to the queue."""
    import mlplatform.jobs

    real = mlplatform.jobs.async_task
    mlplatform.jobs.async_task = lambda *args, **kwargs: None
    try:
        yield
    finally:
        mlplatform.jobs.async_task = real


def raw(org, name: str) -> bytes:
    with schema_context(org.schema):
        with open(filestore.path(name), "rb") as handle:
            return handle.read()


def key_id_of(org, name: str) -> bytes | None:
    header = encryption.Header.parse(raw(org, name)[:encryption.HEADER_SIZE])
    return header.key_id if header else None


@pytest.fixture(scope="module")
def stored(orgs, django_db_blocker):
    """A dataset, a trained version (model and ONNX files) and two finished batches (dataset and uploaded
    CSV input), all stored in globex under key A."""
    globex = orgs["globex"]
    frame = table(300, seed=11)
    with django_db_blocker.unblock(), keys(KEY_A), quiet_broker():
        dataset = upload(globex, csv_bytes(frame), name="secret-data").json()
        started = globex.client("editor").post("/api/v1/ml/training/start", {
            "dataset_id": dataset["id"], "target": "label", "model_name": "secret-model", "algorithm": "logistic_regression",
            "cv_folds": 3}, format="json").json()
        with schema_context(globex.schema):
            assert run_training_job(started["id"]) == "succeeded", TrainingJob.objects.get(pk=started["id"]).error
            version = ModelVersion.objects.get(job_id=started["id"])
        assert version.serving_engine == "onnx" and version.onnx_artifact
        editor = globex.client("editor")
        on_dataset = editor.post("/api/v1/ml/batch-predict", {"model_version_id": version.pk, "dataset_id": dataset["id"]},
                                 format="json").json()
        on_upload = editor.post("/api/v1/ml/batch-predict", {"model_version_id": version.pk,
                                                             "file": io.BytesIO(csv_bytes(frame.drop(columns="label")))},
                                format="multipart").json()
        with schema_context(globex.schema):
            for batch in (on_dataset, on_upload):
                assert run_batch(batch["id"]) == "succeeded", BatchPredictionJob.objects.get(pk=batch["id"]).error
            batches = list(BatchPredictionJob.objects.filter(pk__in=[on_dataset["id"], on_upload["id"]]).order_by("pk"))
        connection.set_schema_to_public()
    with django_db_blocker.unblock(), schema_context(globex.schema):
        files = {"dataset": Dataset.objects.get(pk=dataset["id"]).file, "model": version.artifact,
                 "onnx": version.onnx_artifact, "batch input": batches[1].input_file,
                 "batch output": batches[0].output_file, "uploaded batch output": batches[1].output_file}
    yield {"org": globex, "frame": frame, "dataset": dataset, "version": version, "batches": batches, "files": files}
    with django_db_blocker.unblock(), schema_context(globex.schema):
        BatchPredictionJob.objects.filter(version=version).delete()
        TrainingJob.objects.filter(pk=started["id"]).delete()
        RegisteredModel.objects.filter(name="secret-model").delete()
        Dataset.objects.filter(pk=dataset["id"]).delete()
        for name in files.values():
            filestore.delete(name)
        connection.set_schema_to_public()


def predict(org, version_id):
    return org.client("editor").post(f"/api/v1/ml/models/{version_id}/predict", {"records": [RECORD]}, format="json")


def test_without_a_key_files_are_stored_as_they_always_were(globex, committed):
    with keys(""), quiet_broker():
        dataset = upload(globex, csv_bytes(table(50, seed=12)), name="plain-data").json()
    with schema_context(globex.schema):
        name = Dataset.objects.get(pk=dataset["id"]).file
        assert raw(globex, name).startswith(b"PAR1") and not filestore.is_encrypted(name)
        Dataset.objects.filter(pk=dataset["id"]).delete()
        filestore.delete(name)


def test_the_bytes_on_disk_cannot_be_read(stored):
    org = stored["org"]
    for what, name in stored["files"].items():
        data = raw(org, name)
        assert data.startswith(encryption.MAGIC) and key_id_of(org, name) == ID_A, what
        assert b"PAR1" not in data and not data.startswith(b"PK\x03\x04"), what  # no Parquet, no skops zip
        for plain_text in (b"color", b"proba_", b"prediction", b"sklearn", b"onnx", b"label"):
            assert plain_text not in data, (what, plain_text)


def test_every_route_reads_the_encrypted_files(stored, committed):
    org, version, frame = stored["org"], stored["version"], stored["frame"]
    viewer = org.client("viewer")
    with keys(KEY_A):
        preview = viewer.get(f"/api/v1/ml/datasets/{stored['dataset']['id']}/preview?n=5")
        assert preview.status_code == 200 and len(preview.json()["rows"]) == 5
        assert preview.json()["rows"][0][:2] == [frame.iloc[0]["x1"], frame.iloc[0]["x2"]]
        page = Client(HTTP_HOST=org.host)
        page.login(username="viewer", password="viewer-pass-123")
        assert page.get(f"/datasets/{stored['dataset']['id']}/").status_code == 200

        answer = predict(org, version.pk)  # ONNX engine: the .onnx file
        assert answer.status_code == 200, answer.content
        with schema_context(org.schema):
            ModelVersion.objects.filter(pk=version.pk).update(serving_engine="native")  # the skops file
            loading.cache_clear()
            native = predict(org, version.pk)
            ModelVersion.objects.filter(pk=version.pk).update(serving_engine="onnx")
        assert native.status_code == 200 and native.json()["predictions"] == answer.json()["predictions"]

        evaluated = org.client("editor").post(f"/api/v1/ml/models/{version.pk}/evaluate",
                                              {"dataset_id": stored["dataset"]["id"]}, format="json")
        assert evaluated.status_code == 201, evaluated.content

        for batch in stored["batches"]:
            download = viewer.get(f"/api/v1/ml/batch-predict/{batch.pk}/download")
            assert download.status_code == 200
            rows = pd.read_csv(io.BytesIO(b"".join(download.streaming_content)))
            assert len(rows) == 300
            assert list(rows.columns) == ["row", "prediction", "proba_no", "proba_yes", "warnings"]

        with schema_context(org.schema):
            from training.services import dataset_frame

            read = dataset_frame(Dataset.objects.get(pk=stored["dataset"]["id"]), columns=["x1", "color"])
        pd.testing.assert_frame_equal(read.reset_index(drop=True), frame[["x1", "color"]], check_dtype=False)


def test_readings_and_value_warnings_work_on_encrypted_files(stored, committed, monkeypatch):
    import models_registry.batch as batch_module
    from mlplatform.job_runtime import job_files_prefix
    from mlplatform.models import JobStatus

    org, version = stored["org"], stored["version"]
    editor, viewer = org.client("editor"), org.client("viewer")
    # given a messy table: ambiguous dates (any day-month order fits) and a colour training never saw
    frame, seen = table(80, seed=14), stored["frame"]
    for column in ("x1", "x2"):  # numbers within the training range: the colour is the one value out of place
        frame[column] = frame[column].clip(seen[column].min(), seen[column].max())
    frame.loc[:9, "color"] = "purple"
    frame["visit"] = [f"{1 + i % 12:02d}/{1 + (i * 5) % 12:02d}/2024" for i in range(len(frame))]
    written: list[str] = []
    with keys(KEY_A), quiet_broker():
        dataset = upload(org, csv_bytes(frame), name="secret-messy").json()
        try:
            with schema_context(org.schema):
                written.append(Dataset.objects.get(pk=dataset["id"]).file)
            on_disk = raw(org, written[0])
            assert key_id_of(org, written[0]) == ID_A

            # when a user picks the other date order, the encrypted file is profiled again (and left as it was)
            visit = next(c for c in dataset["profile"]["columns"] if c["name"] == "visit")["reading"]
            other = visit["alternatives"][0]
            patched = editor.patch(f"/api/v1/ml/datasets/{dataset['id']}",
                                   {"column_readings": {"visit": {"format": other}}}, format="json")
            assert patched.status_code == 200, patched.content
            reading = next(c for c in patched.json()["profile"]["columns"] if c["name"] == "visit")["reading"]
            assert reading["date_format"] == other and reading["source"] == "user"
            assert raw(org, written[0]) == on_disk

            # an evaluation reads it with the version's readings and reports the unseen colour
            evaluated = editor.post(f"/api/v1/ml/models/{version.pk}/evaluate", {"dataset_id": dataset["id"]},
                                    format="json")
            assert evaluated.status_code == 201, evaluated.content
            evaluation = next(e for e in evaluated.json()["evaluations"] if e["dataset_id"] == dataset["id"])
            assert evaluation["rows"] == 80
            assert [(w["column"], w["code"], w["count"]) for w in evaluation["warnings"]] == [
                ("color", "unseen_category", 10)]

            # a batch writes an encrypted output with each row's warnings, and a summary on the job
            job = editor.post("/api/v1/ml/batch-predict", {"model_version_id": version.pk,
                                                           "dataset_id": dataset["id"]}, format="json").json()
            with schema_context(org.schema):
                assert run_batch(job["id"]) == "succeeded", BatchPredictionJob.objects.get(pk=job["id"]).error
                finished = BatchPredictionJob.objects.get(pk=job["id"])
            written.append(finished.output_file)
            assert key_id_of(org, finished.output_file) == ID_A and b"purple" not in raw(org, finished.output_file)
            assert [(w["column"], w["code"], w["count"]) for w in finished.warnings] == [("color", "unseen_category", 10)]
            download = viewer.get(f"/api/v1/ml/batch-predict/{job['id']}/download")
            rows = pd.read_csv(io.BytesIO(b"".join(download.streaming_content)), keep_default_na=False)
            flagged = rows[rows["warnings"] != ""]
            assert list(flagged["row"]) == list(range(1, 11))
            assert all(cell.startswith("color: 'purple'") for cell in flagged["warnings"])

            # and a batch that fails after storing its encrypted output (declared lost as it finished) leaves
            # no file behind
            stored_outputs = []
            real_finish = batch_module.job_finish_with_result

            def lost_while_finishing(model, job_id, status, monitor, **fields):
                stored_outputs.append(fields["output_file"])
                assert filestore.is_encrypted(fields["output_file"]) and fields["warnings"]
                model.objects.filter(pk=job_id).update(status=JobStatus.FAILED, error="Worker lost (test)")
                return real_finish(model, job_id, status, monitor, **fields)

            monkeypatch.setattr(batch_module, "job_finish_with_result", lost_while_finishing)
            failing = editor.post("/api/v1/ml/batch-predict", {"model_version_id": version.pk,
                                                               "dataset_id": dataset["id"]}, format="json").json()
            with schema_context(org.schema):
                assert run_batch(failing["id"]) == "failed"
                prefix = job_files_prefix(BatchPredictionJob, failing["id"])
                left = [name for folder in filestore.JOB_FOLDERS for name, _ in filestore._files_in(folder)
                        if name.split("/")[-1].lstrip(".").startswith(prefix)]
                assert stored_outputs and left == [] and not filestore.exists(stored_outputs[0])
        finally:
            with schema_context(org.schema):
                BatchPredictionJob.objects.filter(dataset_id=dataset["id"]).delete()
                Dataset.objects.filter(pk=dataset["id"]).delete()
                for name in written:
                    filestore.delete(name)


def test_a_key_that_is_not_configured_is_refused_with_a_clear_503(stored, committed):
    org, version = stored["org"], stored["version"]
    with keys(KEY_B), quiet_broker():
        answer = predict(org, version.pk)
        assert answer.status_code == 503, answer.content
        body = answer.json()
        assert body["code"] == "storage_key_unavailable" and encryption.key_id_text(ID_A) in body["detail"]
        assert "STORAGE_ENCRYPTION_OLD_KEYS" in body["detail"]

        viewer = org.client("viewer")
        assert viewer.get(f"/api/v1/ml/datasets/{stored['dataset']['id']}/preview").status_code == 503
        assert viewer.get(f"/api/v1/ml/batch-predict/{stored['batches'][0].pk}/download").status_code == 503
        page = Client(HTTP_HOST=org.host)
        page.login(username="viewer", password="viewer-pass-123")
        shown = page.get(f"/datasets/{stored['dataset']['id']}/")
        assert shown.status_code == 503 and b"not among the configured storage keys" in shown.content

        # so do a change of a column's reading (the file is profiled again) and an evaluation, changing nothing
        editor = org.client("editor")
        before = viewer.get(f"/api/v1/ml/datasets/{stored['dataset']['id']}").json()["profile"]
        patched = editor.patch(f"/api/v1/ml/datasets/{stored['dataset']['id']}", {"column_kinds": {"color": "text"}},
                               format="json")
        assert patched.status_code == 503 and patched.json()["code"] == "storage_key_unavailable"
        assert viewer.get(f"/api/v1/ml/datasets/{stored['dataset']['id']}").json()["profile"] == before
        evaluated = editor.post(f"/api/v1/ml/models/{version.pk}/evaluate", {"dataset_id": stored["dataset"]["id"]},
                                format="json")
        assert evaluated.status_code == 503 and evaluated.json()["code"] == "storage_key_unavailable"

        # and so does starting a job on the dataset (its columns are read to check the settings)
        started = org.client("editor").post("/api/v1/ml/training/start", {
            "dataset_id": stored["dataset"]["id"], "target": "label", "model_name": "secret-model-2",
            "algorithm": "logistic_regression"}, format="json")
        assert started.status_code == 503 and started.json()["code"] == "storage_key_unavailable"


@pytest.mark.parametrize("what", ["model", "onnx", "dataset"])
def test_an_encrypted_file_altered_on_disk_is_refused_with_409(stored, committed, what):
    org, version = stored["org"], stored["version"]
    name = stored["files"][what]
    original = raw(org, name)
    with schema_context(org.schema):
        path = filestore.path(name)
    altered = bytearray(original)
    altered[encryption.HEADER_SIZE + 40] ^= 0x01
    try:
        with open(path, "wb") as handle:
            handle.write(altered)
        with keys(KEY_A):
            if what == "dataset":
                response = org.client("viewer").get(f"/api/v1/ml/datasets/{stored['dataset']['id']}/preview")
                assert response.status_code == 409 and response.json()["code"] == "stored_file_corrupt"
            else:
                with schema_context(org.schema):
                    ModelVersion.objects.filter(pk=version.pk).update(serving_engine="onnx" if what == "onnx" else "native")
                response = predict(org, version.pk)
                assert response.status_code == 409, response.content
                assert "failed decryption" in response.json()["detail"]
    finally:
        with open(path, "wb") as handle:
            handle.write(original)
        with schema_context(org.schema):
            ModelVersion.objects.filter(pk=version.pk).update(serving_engine="onnx")


def test_rotation_refuses_to_run_without_any_key_and_reports_files_it_cannot_read(stored, committed, capsys):
    from django.core.management.base import CommandError

    with keys(""), pytest.raises(CommandError, match="No STORAGE_ENCRYPTION_KEY"):
        call_command("rotate_storage_key")
    with keys(encryption.generate_key()), pytest.raises(CommandError, match="could not be read"):
        call_command("rotate_storage_key", organization=[stored["org"].slug])
    assert "not among the configured storage keys" in capsys.readouterr().err


def test_rotation_keeps_every_version_and_dataset_loadable_and_can_be_run_again(stored, committed, capsys):
    org, version = stored["org"], stored["version"]
    files = list(stored["files"].values())
    plain = filestore.new_name(filestore.DATASETS, ".bin")  # a file from before encryption was turned on
    with keys(""), schema_context(org.schema):
        filestore.save_bytes(plain, b"plain bytes")
    try:
        with keys(KEY_B, old=(KEY_A,)):
            # given a rotation that was interrupted after one file
            with schema_context(org.schema):
                assert filestore.reencrypt(files[0]) is True
            assert key_id_of(org, files[0]) == ID_B and key_id_of(org, files[1]) == ID_A

            # when the command runs (again)
            call_command("rotate_storage_key", organization=[org.slug])
            first = capsys.readouterr().out
            call_command("rotate_storage_key", organization=[org.slug])
            second = capsys.readouterr().out

        # then every file is under the new key, including the one that was plain, and a second run changes nothing
        assert f"re-encrypted" in first and "already done" in second and "re-encrypted" not in second.split(":", 1)[1]
        for name in files + [plain]:
            assert key_id_of(org, name) == ID_B, name

        # and with only the new key configured, every route reads them
        with keys(KEY_B):
            call_command("rotate_storage_key", organization=[org.slug], check=True)
            assert f"under key {encryption.key_id_text(ID_B)}" in capsys.readouterr().out
            assert predict(org, version.pk).status_code == 200
            assert org.client("viewer").get(f"/api/v1/ml/datasets/{stored['dataset']['id']}/preview").status_code == 200
            for batch in stored["batches"]:
                assert org.client("viewer").get(f"/api/v1/ml/batch-predict/{batch.pk}/download").status_code == 200
            with schema_context(org.schema):
                assert filestore.read_bytes(plain) == b"plain bytes"

        # and with no current key (the old one only), the command turns the files back into plain ones
        with keys("", old=(KEY_B,)):
            call_command("rotate_storage_key", organization=[org.slug])
        assert all(key_id_of(org, name) is None for name in files + [plain])
        assert raw(org, stored["files"]["dataset"]).startswith(b"PAR1")
        with keys(""):
            assert predict(org, version.pk).status_code == 200
    finally:
        with schema_context(org.schema):
            filestore.delete(plain)


