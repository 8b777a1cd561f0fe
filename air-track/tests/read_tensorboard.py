"""Reads an experiment directory's TensorBoard event files with TensorBoard's own Python
reader and prints what it finds as JSON (used by tests/tensorboard.rs).

Every record's framing is also checked with TensorBoard's masked CRC32C.
Usage: python3 read_tensorboard.py EXPERIMENT_DIR
"""

import json
import os
import struct
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
from tensorboard.plugins.hparams import metadata
from google.protobuf import json_format


def check_framing(path):
    with open(path, "rb") as f:
        data = f.read()
    at, records = 0, 0
    while at < len(data):
        header = data[at : at + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[at + 8 : at + 12])
        assert header_crc == masked_crc32c(header), f"{path}: bad length CRC at {at}"
        body = data[at + 12 : at + 12 + length]
        (body_crc,) = struct.unpack("<I", data[at + 12 + length : at + 16 + length])
        assert body_crc == masked_crc32c(body), f"{path}: bad data CRC at {at}"
        at += 16 + length
        records += 1
    return records


def main(root):
    out = {"runs": {}, "experiment": None, "records": 0}
    for dirpath, _, files in sorted(os.walk(root)):
        events = sorted(f for f in files if f.startswith("events.out.tfevents."))
        if not events:
            continue
        for f in events:
            out["records"] += check_framing(os.path.join(dirpath, f))
        acc = event_accumulator.EventAccumulator(
            dirpath, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0}
        )
        acc.Reload()
        run = {"scalars": {}, "session_start": None, "session_end": None}
        for tag in acc.Tags()["scalars"]:
            run["scalars"][tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
        content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
        for tag, raw in content.items():
            if tag == metadata.SESSION_START_INFO_TAG:
                info = metadata.parse_session_start_info_plugin_data(raw)
                run["session_start"] = {
                    k: json_format.MessageToDict(v) for k, v in info.hparams.items()
                }
            elif tag == metadata.SESSION_END_INFO_TAG:
                run["session_end"] = metadata.parse_session_end_info_plugin_data(raw).status
            elif tag == metadata.EXPERIMENT_TAG:
                exp = metadata.parse_experiment_plugin_data(raw)
                out["experiment"] = {
                    "hparams": {
                        h.name: [json_format.MessageToDict(v) for v in h.domain_discrete.values]
                        for h in exp.hparam_infos
                    },
                    "types": {h.name: h.type for h in exp.hparam_infos},
                    "metrics": sorted(m.name.tag for m in exp.metric_infos),
                }
        out["runs"][os.path.relpath(dirpath, root)] = run
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
