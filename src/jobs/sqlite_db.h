// A thin RAII layer over SQLite: one connection, prepared statements with positional binding, and
// transactions, every failure a Status naming the statement and SQLite's message.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace embedserve::jobs {

// A value bound to or read from a statement: NULL, an integer or text.
using SqlValue = std::variant<std::monostate, int64_t, std::string>;
using SqlRow = std::vector<SqlValue>;

class SqliteDb {
 public:
  // Opens (creating) the database in WAL mode with a busy timeout, so connections of several threads wait for
  // each other's short transactions instead of failing with SQLITE_BUSY.
  static StatusOr<SqliteDb> open(const std::filesystem::path& path);
  SqliteDb(SqliteDb&& other) noexcept;
  SqliteDb& operator=(SqliteDb&& other) noexcept;
  ~SqliteDb();

  Status exec(std::string_view sql);  // statements without parameters or rows (schema, BEGIN, COMMIT)
  // Runs one statement with `params` bound to ?1, ?2, ... and returns its rows.
  StatusOr<std::vector<SqlRow>> query(std::string_view sql, const std::vector<SqlValue>& params = {});
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t changes() const;

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  Status error(std::string_view what) const;
  sqlite3* db_ = nullptr;
};

// Reads column `i` of a row as an integer (NULL: nullopt) or text (NULL: "").
std::optional<int64_t> sql_int(const SqlRow& row, size_t i);
std::string sql_text(const SqlRow& row, size_t i);
// NULL for nullopt / empty text.
SqlValue sql_nullable(const std::optional<int64_t>& v);
SqlValue sql_nullable(const std::string& v);

}  // namespace embedserve::jobs
