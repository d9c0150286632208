using System.Data.Common;
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
            DatabaseProvider.PostgreSql => builder.UseNpgsql(WithAutoPrepare(connectionString), o => o.MigrationsAssembly(migrations)),
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
        // Npgsql's builder answers ContainsKey for every keyword it knows: look at what the string itself says.
        var given = new DbConnectionStringBuilder { ConnectionString = connectionString };
        if (given.Keys.Cast<string>().Any(k => k.Replace(" ", "", StringComparison.Ordinal).Equals("MaxAutoPrepare", StringComparison.OrdinalIgnoreCase)))
        {
            return connectionString;
        }

        var npgsql = new NpgsqlConnectionStringBuilder(connectionString) { MaxAutoPrepare = 64 };
        return npgsql.ConnectionString;
    }
}
