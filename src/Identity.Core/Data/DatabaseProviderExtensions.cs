using System.Data.Common;
using Microsoft.Data.SqlClient;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Identity.Core.Data;

public static class DatabaseProviderExtensions
{
    /// <summary>The assembly holding each provider's migrations (one project per provider under <c>migrations/</c>).</summary>
    public static string MigrationsAssembly(this DatabaseProvider provider) => provider switch
    {
        DatabaseProvider.Sqlite => "Identity.Migrations.Sqlite",
        DatabaseProvider.PostgreSql => "Identity.Migrations.PostgreSql",
        DatabaseProvider.SqlServer => "Identity.Migrations.SqlServer",
        _ => throw new ArgumentOutOfRangeException(nameof(provider), provider, "Unknown database provider."),
    };

    /// <summary>Configures the context for one provider; shared by the server and the design-time factories.</summary>
    public static DbContextOptionsBuilder UseAuthorityDatabase(
        this DbContextOptionsBuilder builder, DatabaseProvider provider, string connectionString)
    {
        var migrations = provider.MigrationsAssembly();
        return provider switch
        {
            DatabaseProvider.Sqlite => builder.UseSqlite(connectionString, o => o.MigrationsAssembly(migrations)),
            DatabaseProvider.PostgreSql => builder.UseNpgsql(WithoutResetOnClose(WithAutoPrepare(connectionString)), o => o.MigrationsAssembly(migrations)),
            DatabaseProvider.SqlServer => builder.UseSqlServer(connectionString, o => o.MigrationsAssembly(migrations)),
            _ => throw new ArgumentOutOfRangeException(nameof(provider), provider, "Unknown database provider."),
        };
    }

    /// <summary>
    /// Npgsql's automatic preparation, unless the connection string says otherwise: the few statements every sign-in,
    /// token and change repeats are parsed and planned once per connection instead of at every execution (PostgreSQL's
    /// CPU per statement). <c>Max Auto Prepare=0</c> turns it off (e.g. behind a pooler that cannot keep prepared
    /// statements).
    /// </summary>
    public static string WithAutoPrepare(string connectionString)
    {
        if (Names(connectionString, "MaxAutoPrepare"))
        {
            return connectionString;
        }

        var npgsql = new NpgsqlConnectionStringBuilder(connectionString) { MaxAutoPrepare = 64 };
        return npgsql.ConnectionString;
    }

    /// <summary>
    /// Npgsql's pooled connections without the session reset, unless the connection string says otherwise: by default a
    /// connection taken from the pool first runs <c>CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *;
    /// SELECT pg_advisory_unlock_all(); DISCARD SEQUENCES; DISCARD TEMP</c> (<c>DISCARD ALL</c> without dropping the
    /// prepared statements), sent with its first command — once per EF Core command that opens the connection, twice per
    /// user change, on every request. The authority keeps no session state on a connection (no <c>SET</c>, temporary
    /// table, cursor, <c>LISTEN</c> or advisory lock: transactions carry their own isolation level), so there is nothing to
    /// reset (decision 0097). <c>No Reset On Close=false</c> turns the reset back on.
    /// </summary>
    public static string WithoutResetOnClose(string connectionString)
    {
        if (Names(connectionString, "NoResetOnClose"))
        {
            return connectionString;
        }

        var npgsql = new NpgsqlConnectionStringBuilder(connectionString) { NoResetOnClose = true };
        return npgsql.ConnectionString;
    }

    /// <summary>
    /// Bounds how long the provider waits to connect and for one command (<see cref="DatabaseOptions.ConnectTimeout"/>,
    /// <see cref="DatabaseOptions.CommandTimeout"/>), so that an unreachable database fails a request within them instead
    /// of holding it (decision 0083). A keyword the connection string names keeps the value it gives.
    /// </summary>
    public static string WithTimeouts(this DatabaseProvider provider, string connectionString, TimeSpan connect, TimeSpan command)
    {
        var connectSeconds = (int)Math.Ceiling(connect.TotalSeconds);
        var commandSeconds = (int)Math.Ceiling(command.TotalSeconds);
        switch (provider)
        {
            case DatabaseProvider.PostgreSql:
                var npgsql = new NpgsqlConnectionStringBuilder(connectionString);
                if (!Names(connectionString, "Timeout"))
                {
                    npgsql.Timeout = connectSeconds;
                }

                if (!Names(connectionString, "CommandTimeout"))
                {
                    npgsql.CommandTimeout = commandSeconds;
                }

                return npgsql.ConnectionString;
            case DatabaseProvider.SqlServer:
                var sqlServer = new SqlConnectionStringBuilder(connectionString);
                if (!Names(connectionString, "ConnectTimeout", "ConnectionTimeout", "Timeout"))
                {
                    sqlServer.ConnectTimeout = connectSeconds;
                }

                if (!Names(connectionString, "CommandTimeout"))
                {
                    sqlServer.CommandTimeout = commandSeconds;
                }

                return sqlServer.ConnectionString;
            case DatabaseProvider.Sqlite:
                // A file has no connect timeout; the command timeout is also how long SQLite waits for another writer's lock.
                return Names(connectionString, "DefaultTimeout", "CommandTimeout")
                    ? connectionString
                    : new SqliteConnectionStringBuilder(connectionString) { DefaultTimeout = commandSeconds }.ConnectionString;
            default:
                throw new ArgumentOutOfRangeException(nameof(provider), provider, "Unknown database provider.");
        }
    }

    /// <summary>
    /// Whether the connection string itself names one of <paramref name="keywords"/> (spaces and case ignored). The
    /// providers' builders answer for every keyword they know, so the string is read as plain keywords.
    /// </summary>
    private static bool Names(string connectionString, params string[] keywords)
    {
        var given = new DbConnectionStringBuilder { ConnectionString = connectionString };
        return given.Keys.Cast<string>()
            .Select(k => k.Replace(" ", "", StringComparison.Ordinal))
            .Any(k => keywords.Contains(k, StringComparer.OrdinalIgnoreCase));
    }
}
