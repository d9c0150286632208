using Microsoft.Data.SqlClient;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Identity.Core.Data;

/// <summary>
/// Failures that mean the database cannot serve now (unreachable, shutting down, out of connections or resources, a
/// bounded wait run out): the request is answered 503 with <c>Retry-After</c> (decision 0083). Anything else a
/// database throws (a constraint, a conflict, a bad statement) is not an outage and is not answered as one.
/// </summary>
public static class StoreOutages
{
    // SQL Server: network and connection failures, time-outs, a database being unavailable or the service busy.
    // Decided by the number, as EF Core's own SQL Server transient detector does; deadlocks (1205) are not outages.
    private static readonly HashSet<int> SqlServerUnavailable =
    [
        -2, // client time-out (Connect Timeout, Command Timeout)
        -1, 2, 53, // the server could not be found or reached
        64, 233, 10053, 10054, // the connection was closed or reset
        10060, 10061, 11001, // connect timed out, refused, host unknown
        4060, // the database cannot be opened (offline, recovering)
        40197, 40501, 40613, 49918, 49919, 49920, // Azure SQL: service busy, database unavailable, too many operations
    ];

    /// <summary>Whether <paramref name="exception"/>, or an exception it wraps, says the database cannot serve now.</summary>
    public static bool IsStoreOutage(this Exception exception)
    {
        // A cancellation (the client went away) is not an outage, whatever the database said when it was cancelled.
        for (var (current, depth) = (exception, 0); current is not null and not OperationCanceledException && depth < 8;
             current = current.InnerException, depth++)
        {
            if (IsOutage(current))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsOutage(Exception exception) => exception switch
    {
        PostgresException postgres => IsPostgresOutage(postgres.SqlState),
        // Not from the server: the socket failed, connecting or a command ran out of time, the pool had no connection.
        // Npgsql says so with IsTransient (an I/O, socket or time-out cause).
        NpgsqlException npgsql => npgsql.IsTransient,
        SqlException sqlServer => sqlServer.Errors.Cast<SqlError>().Any(e => SqlServerUnavailable.Contains(e.Number)),
        // SQLITE_BUSY / SQLITE_LOCKED once Default Timeout is spent waiting for another writer; the file cannot be
        // opened or read (SQLITE_CANTOPEN, SQLITE_IOERR).
        SqliteException sqlite => sqlite.SqliteErrorCode is 5 or 6 or 10 or 14,
        _ => false,
    };

    /// <summary>
    /// PostgreSQL's SQLSTATE (Appendix A of its manual): class 08 (connection exception, except 08P01, a protocol
    /// violation), class 53 (insufficient resources: too many connections, out of memory, disk full), 57P01-57P03 and
    /// 57P05 (the server is shutting down, crashed, not yet accepting connections; an idle session ended), and 57014 (a
    /// statement cancelled by its time-out). Serialization failures and deadlocks (class 40) are conflicts, not outages.
    /// </summary>
    private static bool IsPostgresOutage(string sqlState) =>
        (sqlState.StartsWith("08", StringComparison.Ordinal) && sqlState != PostgresErrorCodes.ProtocolViolation)
        || sqlState.StartsWith("53", StringComparison.Ordinal)
        || sqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
            or PostgresErrorCodes.IdleSessionTimeout or PostgresErrorCodes.QueryCanceled;
}
