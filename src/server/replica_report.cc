// /health's answer and /info's replica list from the scheduler's replica states.
#include "server/replica_report.h"

namespace embedserve {

ServerResponse health_response(const std::vector<ReplicaStatus>& replicas) {
  size_t up = 0;
  for (const ReplicaStatus& r : replicas) up += r.up;
  ServerResponse response;
  JsonWriter w(response.body);
  w.begin_object();
  w.key("status");
  if (up == replicas.size()) {
    w.string("healthy");
    w.end_object();
    return response;
  }
  // A load balancer keeps sending to a degraded server (it still answers); only one with nothing left is down.
  w.string(up > 0 ? "degraded" : "unhealthy");
  if (up == 0) response.status = 503;
  w.key("replicas");
  w.begin_object();
  w.key("up");
  w.integer(static_cast<int64_t>(up));
  w.key("total");
  w.integer(static_cast<int64_t>(replicas.size()));
  w.key("failed");
  w.begin_array();
  for (const ReplicaStatus& r : replicas) {
    if (r.up) continue;
    w.begin_object();
    w.key("replica");
    w.integer(static_cast<int64_t>(r.index));
    w.key("fault");
    w.string(r.fault);
    w.end_object();
  }
  w.end_array();
  w.end_object();
  w.end_object();
  return response;
}

void write_replicas(JsonWriter& w, const std::vector<ReplicaStatus>& replicas,
                    const std::vector<ReplicaDevice>& devices) {
  w.begin_array();
  for (size_t i = 0; i < replicas.size(); ++i) {
    const ReplicaStatus& r = replicas[i];
    w.begin_object();
    w.key("replica");
    w.integer(static_cast<int64_t>(r.index));
    w.key("up");
    w.boolean(r.up);
    if (i < devices.size()) {
      const ReplicaDevice& d = devices[i];
      w.key("device");
      w.string(d.device);
      if (!d.name.empty()) {
        w.key("name");
        w.string(d.name);
        w.key("memory_total_bytes");
        w.integer(static_cast<int64_t>(d.memory_total_bytes));
        w.key("memory_used_bytes");
        w.integer(static_cast<int64_t>(d.memory_used_bytes));
      }
      w.key("engine_bytes");
      w.integer(static_cast<int64_t>(d.engine_bytes));
    }
    if (!r.up) {
      w.key("fault");
      w.string(r.fault);
    }
    w.end_object();
  }
  w.end_array();
}

}  // namespace embedserve
