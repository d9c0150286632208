using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Identity.Region.Replica;

/// <summary>
/// The SQLite replica in write-ahead-log mode with <c>synchronous=NORMAL</c>: a commit no longer waits for a disk flush
/// (the WAL is flushed at checkpoints), which is what lets one consumer apply hundreds of events a second. A crash
/// can lose the last commits, never corrupt the file; the replica is a copy that events and resync restore.
/// </summary>
public sealed class SqliteReplicaTuning : DbConnectionInterceptor
{
    public static readonly SqliteReplicaTuning Instance = new();

    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Tune(connection);

    public override async Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = Pragmas;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private const string Pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";

    private static void Tune(DbConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = Pragmas;
        command.ExecuteNonQuery();
    }
}
