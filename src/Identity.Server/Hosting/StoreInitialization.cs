using Identity.Core.Data;
using Identity.Server.Clients;
using Identity.Server.Keys;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Identity.Server.Hosting;

public static class StoreInitialization
{
    /// <summary>A migration may rewrite a large table: not held to the requests' Database:CommandTimeout.</summary>
    private static readonly TimeSpan MigrationCommandTimeout = TimeSpan.FromMinutes(30);

    /// <summary>
    /// <c>Identity.Server migrate</c>: applies the pending migrations of the configured provider and exits.
    /// This is how production deployments update the schema (a job before the rollout).
    /// </summary>
    public static async Task MigrateStoreAsync(this WebApplication app)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        db.Database.SetCommandTimeout(MigrationCommandTimeout);
        var pending = (await db.Database.GetPendingMigrationsAsync()).ToList();
        await db.Database.MigrateAsync();
        app.Logger.LogInformation("Applied {Count} migration(s): {Migrations}", pending.Count, pending);
    }

    /// <summary>
    /// Before the server listens: schema (migrated only for the embedded default or when asked), shared keys,
    /// declared clients and scopes.
    /// </summary>
    public static async Task InitializeStoreAsync(this WebApplication app, CancellationToken cancellationToken = default)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var services = scope.ServiceProvider;
        var db = services.GetRequiredService<AuthorityDbContext>();
        var options = services.GetRequiredService<IOptions<DatabaseOptions>>().Value;

        if (options.ShouldAutoMigrate)
        {
            db.Database.SetCommandTimeout(MigrationCommandTimeout);
            await db.Database.MigrateAsync(cancellationToken);
            db.Database.SetCommandTimeout(null);
        }
        else
        {
            var pending = (await db.Database.GetPendingMigrationsAsync(cancellationToken)).ToList();
            if (pending.Count > 0)
            {
                throw new InvalidOperationException(
                    $"The {options.Provider} database has {pending.Count} pending migration(s) ({string.Join(", ", pending)}). " +
                    "Run `dotnet Identity.Server.dll migrate` (or `dotnet run --project src/Identity.Server -- migrate`) with the same configuration, " +
                    "or set Database:AutoMigrate=true.");
            }
        }

        if (options.Provider == DatabaseProvider.Sqlite)
        {
            // Readers do not block the writer; good enough for the embedded default.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
        }

        await services.GetRequiredService<SigningKeyStore>().InitializeAsync(db, cancellationToken);
        await services.GetRequiredService<SigningKeyRing>().RefreshAsync(db, cancellationToken);
        await services.GetRequiredService<ClientSeeder>().ApplyAsync(cancellationToken);
        await services.GetRequiredService<Account.DemoUserSeeder>().ApplyAsync();
    }
}
