// JobStore: the SQLite schema, and the statements behind each operation.
#include "jobs/job_store.h"

#include "jobs/sqlite_db.h"

namespace embedserve::jobs {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS files(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  owner TEXT NOT NULL,
  storage_name TEXT NOT NULL UNIQUE,
  filename TEXT NOT NULL,
  purpose TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER);
CREATE TABLE IF NOT EXISTS batches(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  owner TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  input_file_id TEXT NOT NULL,
  completion_window TEXT NOT NULL,
  status TEXT NOT NULL,
  output_file_id TEXT, error_file_id TEXT, errors_json TEXT, metadata_json TEXT,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  in_progress_at INTEGER, finalizing_at INTEGER, completed_at INTEGER, failed_at INTEGER, expired_at INTEGER,
  cancelling_at INTEGER, cancelled_at INTEGER,
  total INTEGER NOT NULL, completed INTEGER NOT NULL, failed INTEGER NOT NULL,
  input_offset INTEGER NOT NULL, output_bytes INTEGER NOT NULL, error_bytes INTEGER NOT NULL,
  output_storage TEXT NOT NULL, error_storage TEXT NOT NULL);
)sql";

constexpr const char* kFileColumns = "id, owner, storage_name, filename, purpose, bytes, created_at, expires_at";
constexpr const char* kBatchColumns =
    "id, owner, endpoint, input_file_id, completion_window, status, output_file_id, error_file_id, errors_json, "
    "metadata_json, created_at, expires_at, in_progress_at, finalizing_at, completed_at, failed_at, expired_at, "
    "cancelling_at, cancelled_at, total, completed, failed, input_offset, output_bytes, error_bytes, "
    "output_storage, error_storage";

FileRecord file_from_row(const SqlRow& r) {
  FileRecord f;
  f.id = sql_text(r, 0);
  f.owner = sql_text(r, 1);
  f.storage_name = sql_text(r, 2);
  f.filename = sql_text(r, 3);
  f.purpose = sql_text(r, 4);
  f.bytes = sql_int(r, 5).value_or(0);
  f.created_at = sql_int(r, 6).value_or(0);
  f.expires_at = sql_int(r, 7);
  return f;
}

BatchRecord batch_from_row(const SqlRow& r) {
  BatchRecord b;
  b.id = sql_text(r, 0);
  b.owner = sql_text(r, 1);
  b.endpoint = sql_text(r, 2);
  b.input_file_id = sql_text(r, 3);
  b.completion_window = sql_text(r, 4);
  b.status = sql_text(r, 5);
  b.output_file_id = sql_text(r, 6);
  b.error_file_id = sql_text(r, 7);
  b.errors_json = sql_text(r, 8);
  b.metadata_json = sql_text(r, 9);
  b.created_at = sql_int(r, 10).value_or(0);
  b.expires_at = sql_int(r, 11).value_or(0);
  b.in_progress_at = sql_int(r, 12);
  b.finalizing_at = sql_int(r, 13);
  b.completed_at = sql_int(r, 14);
  b.failed_at = sql_int(r, 15);
  b.expired_at = sql_int(r, 16);
  b.cancelling_at = sql_int(r, 17);
  b.cancelled_at = sql_int(r, 18);
  b.total = sql_int(r, 19).value_or(0);
  b.completed = sql_int(r, 20).value_or(0);
  b.failed = sql_int(r, 21).value_or(0);
  b.input_offset = sql_int(r, 22).value_or(0);
  b.output_bytes = sql_int(r, 23).value_or(0);
  b.error_bytes = sql_int(r, 24).value_or(0);
  b.output_storage = sql_text(r, 25);
  b.error_storage = sql_text(r, 26);
  return b;
}

std::vector<SqlValue> file_values(const FileRecord& f) {
  return {f.id, f.owner, f.storage_name, f.filename, f.purpose, f.bytes, f.created_at, sql_nullable(f.expires_at)};
}

Status insert_file_row(SqliteDb& db, const FileRecord& f) {
  return db.query(std::string("INSERT INTO files(") + kFileColumns + ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                  file_values(f)).status();
}

Status update_batch_row(SqliteDb& db, const BatchRecord& b) {
  return db.query(
      // A cancel request (another connection) may land between the runner's read and this write: a job the
      // client set to cancelling stays cancelling until the runner itself moves it on.
      "UPDATE batches SET status=CASE WHEN status='cancelling' AND ?2 IN ('validating','in_progress') THEN status "
      "ELSE ?2 END, output_file_id=?3, error_file_id=?4, errors_json=?5, in_progress_at=?6, "
      "finalizing_at=?7, completed_at=?8, failed_at=?9, expired_at=?10, cancelling_at=COALESCE(cancelling_at, ?11), "
      "cancelled_at=?12, "
      "total=?13, completed=?14, failed=?15, input_offset=?16, output_bytes=?17, error_bytes=?18 WHERE id=?1",
      {b.id, b.status, sql_nullable(b.output_file_id), sql_nullable(b.error_file_id), sql_nullable(b.errors_json),
       sql_nullable(b.in_progress_at), sql_nullable(b.finalizing_at), sql_nullable(b.completed_at),
       sql_nullable(b.failed_at), sql_nullable(b.expired_at), sql_nullable(b.cancelling_at),
       sql_nullable(b.cancelled_at), b.total, b.completed, b.failed, b.input_offset, b.output_bytes, b.error_bytes})
      .status();
}

// Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back on error.
template <typename Body>
Status in_transaction(SqliteDb& db, Body body) {
  EMBEDSERVE_RETURN_IF_ERROR(db.exec("BEGIN IMMEDIATE"));
  Status st = body();
  if (st.ok()) st = db.exec("COMMIT");
  if (!st.ok()) (void)db.exec("ROLLBACK");
  return st;
}

}  // namespace

#define OPEN_DB(db)                                   \
  auto db##_or = SqliteDb::open(path_);               \
  if (!db##_or.ok()) return db##_or.status();         \
  SqliteDb& db = *db##_or

StatusOr<JobStore> JobStore::open(const std::filesystem::path& dir) {
  JobStore store(dir / "jobs.sqlite3");
  auto db = SqliteDb::open(store.path_);
  if (!db.ok()) return db.status();
  EMBEDSERVE_RETURN_IF_ERROR(db->exec(kSchema));
  return store;
}

Status JobStore::insert_file(const FileRecord& f) {
  OPEN_DB(db);
  return insert_file_row(db, f);
}

StatusOr<std::optional<FileRecord>> JobStore::get_file(const std::string& id, const std::string& owner) const {
  OPEN_DB(db);
  auto rows = db.query(std::string("SELECT ") + kFileColumns + " FROM files WHERE id=?1 AND owner=?2", {id, owner});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<FileRecord>();
  return std::optional<FileRecord>(file_from_row(rows->front()));
}

StatusOr<std::vector<FileRecord>> JobStore::list_files(const std::string& owner, const std::string& purpose,
                                                       size_t limit, const std::string& after) const {
  OPEN_DB(db);
  auto rows = db.query(std::string("SELECT ") + kFileColumns +
                           " FROM files WHERE owner=?1 AND (?2 = '' OR purpose=?2) AND "
                           "(?3 = '' OR seq < (SELECT seq FROM files WHERE id=?3)) ORDER BY seq DESC LIMIT ?4",
                       {owner, purpose, after, static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  std::vector<FileRecord> out;
  for (const auto& r : *rows) out.push_back(file_from_row(r));
  return out;
}

StatusOr<bool> JobStore::delete_file(const std::string& id, const std::string& owner) {
  OPEN_DB(db);
  auto st = db.query("DELETE FROM files WHERE id=?1 AND owner=?2", {id, owner});
  if (!st.ok()) return st.status();
  return db.changes() > 0;
}

StatusOr<std::vector<FileRecord>> JobStore::files_expired_by(int64_t now) const {
  OPEN_DB(db);
  auto rows = db.query(std::string("SELECT ") + kFileColumns +
                           " FROM files WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                       {now});
  if (!rows.ok()) return rows.status();
  std::vector<FileRecord> out;
  for (const auto& r : *rows) out.push_back(file_from_row(r));
  return out;
}

StatusOr<std::vector<std::string>> JobStore::storage_names() const {
  OPEN_DB(db);
  auto rows = db.query(
      "SELECT storage_name FROM files UNION SELECT output_storage FROM batches WHERE output_file_id IS NULL "
      "UNION SELECT error_storage FROM batches WHERE error_file_id IS NULL");
  if (!rows.ok()) return rows.status();
  std::vector<std::string> out;
  for (const auto& r : *rows) out.push_back(sql_text(r, 0));
  return out;
}

Status JobStore::insert_batch(const BatchRecord& b) {
  OPEN_DB(db);
  return db.query(std::string("INSERT INTO batches(") + kBatchColumns +
                      ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,"
                      "?24,?25,?26,?27)",
                  {b.id, b.owner, b.endpoint, b.input_file_id, b.completion_window, b.status,
                   sql_nullable(b.output_file_id), sql_nullable(b.error_file_id), sql_nullable(b.errors_json),
                   sql_nullable(b.metadata_json), b.created_at, b.expires_at, sql_nullable(b.in_progress_at),
                   sql_nullable(b.finalizing_at), sql_nullable(b.completed_at), sql_nullable(b.failed_at),
                   sql_nullable(b.expired_at), sql_nullable(b.cancelling_at), sql_nullable(b.cancelled_at), b.total,
                   b.completed, b.failed, b.input_offset, b.output_bytes, b.error_bytes, b.output_storage,
                   b.error_storage})
      .status();
}

StatusOr<std::optional<BatchRecord>> JobStore::get_batch(const std::string& id, const std::string& owner) const {
  OPEN_DB(db);
  auto rows = db.query(std::string("SELECT ") + kBatchColumns + " FROM batches WHERE id=?1 AND owner=?2", {id, owner});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<BatchRecord>();
  return std::optional<BatchRecord>(batch_from_row(rows->front()));
}

StatusOr<std::vector<BatchRecord>> JobStore::list_batches(const std::string& owner, const std::string& after,
                                                          size_t limit) const {
  OPEN_DB(db);
  auto rows = db.query(std::string("SELECT ") + kBatchColumns +
                           " FROM batches WHERE owner=?1 AND "
                           "(?2 = '' OR seq < (SELECT seq FROM batches WHERE id=?2)) ORDER BY seq DESC LIMIT ?3",
                       {owner, after, static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  std::vector<BatchRecord> out;
  for (const auto& r : *rows) out.push_back(batch_from_row(r));
  return out;
}

StatusOr<std::vector<BatchRecord>> JobStore::unfinished_batches() const {
  OPEN_DB(db);
  auto rows = db.query(std::string("SELECT ") + kBatchColumns +
                       " FROM batches WHERE status IN ('validating','in_progress','finalizing','cancelling') "
                       "ORDER BY seq");
  if (!rows.ok()) return rows.status();
  std::vector<BatchRecord> out;
  for (const auto& r : *rows) out.push_back(batch_from_row(r));
  return out;
}

Status JobStore::update_batch(const BatchRecord& b) {
  OPEN_DB(db);
  return update_batch_row(db, b);
}

Status JobStore::finish_batch(const BatchRecord& b, const std::vector<FileRecord>& results) {
  OPEN_DB(db);
  return in_transaction(db, [&]() -> Status {
    for (const auto& f : results) EMBEDSERVE_RETURN_IF_ERROR(insert_file_row(db, f));
    return update_batch_row(db, b);
  });
}

StatusOr<std::optional<BatchRecord>> JobStore::request_cancel(const std::string& id, const std::string& owner,
                                                              int64_t now) {
  OPEN_DB(db);
  auto st = db.query("UPDATE batches SET status='cancelling', cancelling_at=?3 WHERE id=?1 AND owner=?2 AND "
                     "status IN ('validating','in_progress')",
                     {id, owner, now});
  if (!st.ok()) return st.status();
  return get_batch(id, owner);
}

StatusOr<std::string> JobStore::batch_status(const std::string& id) const {
  OPEN_DB(db);
  auto rows = db.query("SELECT status FROM batches WHERE id=?1", {id});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return not_found("no batch " + id);
  return sql_text(rows->front(), 0);
}

}  // namespace embedserve::jobs
