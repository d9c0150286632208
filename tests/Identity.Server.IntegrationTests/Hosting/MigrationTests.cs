using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>
/// Each provider's migrations project matches the model the server runs: a model change without a new
/// migration fails here, for every provider (SQL Server's check needs no server: it compares model and snapshot).
/// </summary>
public sealed class MigrationTests
{
    [Theory]
    [InlineData(DatabaseProvider.Sqlite, "Data Source=:memory:")]
    [InlineData(DatabaseProvider.PostgreSql, "Host=localhost;Database=unused")]
    [InlineData(DatabaseProvider.SqlServer, "Server=localhost;Database=unused;TrustServerCertificate=true")]
    public void Migrations_EachProvider_HaveNoPendingModelChanges(DatabaseProvider provider, string connectionString)
    {
        var services = new ServiceCollection();
        services.AddIdentityCore<ApplicationUser>(o => DesignTimeServices.ConfigureIdentityStore(o.Stores))
            .AddEntityFrameworkStores<AuthorityDbContext>();
        services.AddDbContext<AuthorityDbContext>(o => o.UseAuthorityDatabase(provider, connectionString));
        using var provider_ = services.BuildServiceProvider();
        using var scope = provider_.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();

        Assert.NotEmpty(db.Database.GetMigrations());
        Assert.False(db.Database.HasPendingModelChanges(), $"{provider}: the model has changes without a migration");
    }

    [Fact]
    public async Task RunningServer_Postgres_AppliedEveryMigration()
    {
        var database = new PostgresTestDatabase();
        await database.InitializeAsync();
        try
        {
            var fixtureSettings = new Dictionary<string, string?>
            {
                ["Database:Provider"] = "PostgreSql",
                ["Database:ConnectionString"] = database.ConnectionString,
                ["Database:AutoMigrate"] = "true",
                ["Oidc:Issuer"] = "http://localhost/",
                ["Oidc:AllowInsecureHttp"] = "true",
            };
            await using var host = new IdentityServerHost(fixtureSettings);
            host.Start();
            await using var scope = host.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();

            Assert.Empty(await db.Database.GetPendingMigrationsAsync());
            Assert.Equal(db.Database.GetMigrations(), await db.Database.GetAppliedMigrationsAsync());
        }
        finally
        {
            await database.DisposeAsync();
        }
    }

    [Fact]
    public async Task ProductionMode_UnmigratedDatabase_RefusesToStartAndNamesTheCommand()
    {
        var database = new SqliteTestDatabase();
        await database.InitializeAsync();
        try
        {
            await using var host = new IdentityServerHost(new Dictionary<string, string?>
            {
                ["Database:Provider"] = "Sqlite",
                ["Database:ConnectionString"] = database.ConnectionString,
                ["Database:AutoMigrate"] = "false",
                ["Oidc:Issuer"] = "http://localhost/",
                ["Oidc:AllowInsecureHttp"] = "true",
            });

            var error = Assert.Throws<InvalidOperationException>(() => host.Start());
            Assert.Contains("migrate", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            await database.DisposeAsync();
        }
    }
}
