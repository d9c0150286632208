using Microsoft.EntityFrameworkCore;

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
            DatabaseProvider.PostgreSql => builder.UseNpgsql(connectionString, o => o.MigrationsAssembly(migrations)),
            DatabaseProvider.SqlServer => builder.UseSqlServer(connectionString, o => o.MigrationsAssembly(migrations)),
            _ => throw new ArgumentOutOfRangeException(nameof(provider), provider, "Unknown database provider."),
        };
    }
}
