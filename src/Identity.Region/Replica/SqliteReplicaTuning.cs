using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Identity.Region.Replica;

/// <summary>
/// The SQLite replica with <c>synchronous=NORMAL</c> on every connection (a per-connection setting): in write-ahead-log
/// mode, set once on the file at start (<see cref="Resync.ReplicaStartup"/>), a commit then no longer waits for a disk
/// flush (the WAL is flushed at checkpoints). A crash can lose the last commits, never corrupt the file; the replica is
/// a copy that events and resync restore.
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

    /// <summary>Whether this replica is the library's default SQLite store (tuned here), not one the host chose.</summary>
    public static bool AppliesTo(DbContext context) =>
        context.GetService<IDbContextOptions>().FindExtension<CoreOptionsExtension>()?.Interceptors?.Contains(Instance) == true;

    /// <summary>Persistent in the database file: set once at start, not on every connection.</summary>
    public const string WriteAheadLog = "PRAGMA journal_mode=WAL;";

    private const string Pragmas = "PRAGMA synchronous=NORMAL;";

    private static void Tune(DbConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = Pragmas;
        command.ExecuteNonQuery();
    }
}
