using Microsoft.Data.SqlClient;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Identity.Core.Data;

/// <summary>Failed writes that are conflicts with a concurrent change (409), not faults (500), on each provider.</summary>
public static class StoreConflicts
{
    /// <summary>
    /// A foreign key refused the write: the row it points at was deleted meanwhile, or a row was added meanwhile that
    /// points at the one being deleted. The database, not an earlier check, is what decides such a race.
    /// </summary>
    public static bool IsForeignKeyViolation(this DbUpdateException exception) => exception.InnerException switch
    {
        // SQLITE_CONSTRAINT_FOREIGNKEY; an ON DELETE RESTRICT key reports SQLITE_CONSTRAINT_TRIGGER with the same message.
        SqliteException sqlite => sqlite.SqliteExtendedErrorCode == 787
            || (sqlite.SqliteExtendedErrorCode == 1811 && sqlite.Message.Contains("FOREIGN KEY constraint failed", StringComparison.Ordinal)),
        PostgresException postgres => postgres.SqlState == PostgresErrorCodes.ForeignKeyViolation, // 23503
        SqlException sqlServer => sqlServer.Number == 547, // conflicted with the FOREIGN KEY / REFERENCE constraint
        _ => false,
    };
}
