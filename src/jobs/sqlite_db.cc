// SqliteDb: connection, WAL mode, prepared statements, errors as Status.
#include "jobs/sqlite_db.h"

#include <sqlite3.h>

namespace embedserve::jobs {

StatusOr<SqliteDb> SqliteDb::open(const std::filesystem::path& path) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close(raw);
    return io_error("cannot open the job database " + path.string() + ": " + msg +
                    " (check --data-dir exists and is writable)");
  }
  SqliteDb db(raw);
  sqlite3_busy_timeout(raw, 10000);
  // WAL: readers (GET /v1/batches) never wait for the runner's commits. synchronous=NORMAL may lose the last
  // commits on power loss but never corrupts; the runner then redoes those chunks (the output files are cut
  // back to the sizes the database holds), so durability of each commit is not needed for exactly-once output.
  EMBEDSERVE_RETURN_IF_ERROR(db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"));
  return db;
}

SqliteDb::SqliteDb(SqliteDb&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }

SqliteDb& SqliteDb::operator=(SqliteDb&& other) noexcept {
  if (this != &other) {
    sqlite3_close(db_);
    db_ = other.db_;
    other.db_ = nullptr;
  }
  return *this;
}

SqliteDb::~SqliteDb() { sqlite3_close(db_); }

Status SqliteDb::error(std::string_view what) const {
  const int code = sqlite3_errcode(db_);
  const std::string msg = "job database: " + std::string(what) + ": " + sqlite3_errmsg(db_);
  if (code == SQLITE_FULL) return resource_exhausted(msg + " (the disk holding --data-dir is full)");
  return io_error(msg);
}

Status SqliteDb::exec(std::string_view sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return error(sql.substr(0, 40));
  }
  return Status();
}

StatusOr<std::vector<SqlRow>> SqliteDb::query(std::string_view sql, const std::vector<SqlValue>& params) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) != SQLITE_OK)
    return error(sql.substr(0, 40));
  struct Finalize {
    sqlite3_stmt* s;
    ~Finalize() { sqlite3_finalize(s); }
  } finalize{stmt};
  for (size_t i = 0; i < params.size(); ++i) {
    const int at = static_cast<int>(i + 1);
    int rc = SQLITE_OK;
    if (const auto* v = std::get_if<int64_t>(&params[i])) rc = sqlite3_bind_int64(stmt, at, *v);
    else if (const auto* t = std::get_if<std::string>(&params[i]))
      rc = sqlite3_bind_text(stmt, at, t->data(), static_cast<int>(t->size()), SQLITE_TRANSIENT);
    else rc = sqlite3_bind_null(stmt, at);
    if (rc != SQLITE_OK) return error(sql.substr(0, 40));
  }
  std::vector<SqlRow> rows;
  for (;;) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return error(sql.substr(0, 40));
    const int n = sqlite3_column_count(stmt);
    SqlRow row(static_cast<size_t>(n));
    for (int c = 0; c < n; ++c) {
      switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_NULL: break;
        case SQLITE_INTEGER: row[static_cast<size_t>(c)] = static_cast<int64_t>(sqlite3_column_int64(stmt, c)); break;
        default: {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
          row[static_cast<size_t>(c)] = std::string(text ? text : "", static_cast<size_t>(sqlite3_column_bytes(stmt, c)));
        }
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

int64_t SqliteDb::changes() const { return sqlite3_changes(db_); }

std::optional<int64_t> sql_int(const SqlRow& row, size_t i) {
  if (const auto* v = std::get_if<int64_t>(&row.at(i))) return *v;
  return std::nullopt;
}

std::string sql_text(const SqlRow& row, size_t i) {
  if (const auto* v = std::get_if<std::string>(&row.at(i))) return *v;
  return "";
}

SqlValue sql_nullable(const std::optional<int64_t>& v) { return v ? SqlValue(*v) : SqlValue(); }
SqlValue sql_nullable(const std::string& v) { return v.empty() ? SqlValue() : SqlValue(v); }

}  // namespace embedserve::jobs
