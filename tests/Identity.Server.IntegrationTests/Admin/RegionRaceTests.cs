using System.Net;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Admin;

/// <summary>
/// A region and an account's link to it change concurrently: the write that loses the race is refused by the
/// database's foreign key, and the API answers 409 with nothing written (no row, no audit entry, no outbox event).
/// The race is made deterministic by a hook that commits the other side just before the request's SaveChanges.
/// </summary>
public abstract class RegionRaceTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>
    where TDatabase : TestDatabase, new()
{
    private static string NewRegion() => "r-" + Guid.NewGuid().ToString("n")[..8];

    [Fact]
    public async Task EnableRegion_RegionDeletedJustBeforeTheWrite_ConflictAndNothingWritten()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AdminArrange.AccountAsync(platform, "eu");
        var region = NewRegion();
        await AdminArrange.RegionAsync(platform, region);
        var hook = new BeforeSave(fixture.Database,
            db => db.ChangeTracker.Entries<AccountRegion>().Any(e => e.State == EntityState.Added && e.Entity.RegionCode == region),
            other => other.Regions.Where(r => r.Code == region).ExecuteDeleteAsync());
        await using var racing = Racing(hook);
        var client = RacingClient(racing, platform);
        var before = await SnapshotAsync(account);

        var response = await client.PutAsync($"/admin/v1/accounts/{account}/regions/{region}", null);

        await ResponseAssert.StatusAsync(response, HttpStatusCode.Conflict);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(hook.Fired);
        Assert.Equal(before, await SnapshotAsync(account));
    }

    [Fact]
    public async Task CreateAccount_RegionDeletedJustBeforeTheWrite_ConflictAndNothingWritten()
    {
        var platform = await fixture.PlatformAdminAsync();
        var region = NewRegion();
        await AdminArrange.RegionAsync(platform, region);
        var hook = new BeforeSave(fixture.Database,
            db => db.ChangeTracker.Entries<Identity.Core.Accounts.Account>().Any(e => e.State == EntityState.Added),
            other => other.Regions.Where(r => r.Code == region).ExecuteDeleteAsync());
        await using var racing = Racing(hook);
        var client = RacingClient(racing, platform);
        var before = await SnapshotAsync(Guid.Empty);

        var response = await client.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts",
            $$"""{"name":"Raced","regions":["{{region}}"]}""");

        await ResponseAssert.StatusAsync(response, HttpStatusCode.Conflict);
        Assert.True(hook.Fired);
        Assert.Equal(before, await SnapshotAsync(Guid.Empty));
    }

    [Fact]
    public async Task DeleteRegion_AccountEnabledItJustBeforeTheWrite_ConflictAndRegionKept()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AdminArrange.AccountAsync(platform, "eu");
        var region = NewRegion();
        await AdminArrange.RegionAsync(platform, region);
        var hook = new BeforeSave(fixture.Database,
            db => db.ChangeTracker.Entries<Core.Accounts.Region>().Any(e => e.State == EntityState.Deleted && e.Entity.Code == region),
            async other =>
            {
                other.Add(new AccountRegion { AccountId = account, RegionCode = region });
                await other.SaveChangesAsync();
            });

        await using var racing = Racing(hook);
        var response = await RacingClient(racing, platform).DeleteAsync($"/admin/v1/regions/{region}");

        await ResponseAssert.StatusAsync(response, HttpStatusCode.Conflict);
        Assert.True(hook.Fired);
        var regions = await ResponseAssert.StatusAsync(await platform.GetAsync("/admin/v1/regions"), HttpStatusCode.OK);
        Assert.Contains(regions.EnumerateArray(), r => r.GetProperty("code").GetString() == region);
    }

    /// <summary>The same server with the hook in its database context, called with the platform admin's token.</summary>
    private static HttpClient RacingClient(WebApplicationFactory<Program> racing, HttpClient platform)
    {
        var client = racing.CreateClient();
        client.DefaultRequestHeaders.Authorization = platform.DefaultRequestHeaders.Authorization;
        return client;
    }

    private WebApplicationFactory<Program> Racing(BeforeSave hook) =>
        fixture.Server.WithWebHostBuilder(builder => builder.ConfigureTestServices(services =>
            services.ConfigureDbContext<AuthorityDbContext>(options => options.AddInterceptors(hook))));

    private async Task<(long Version, string Regions, int Accounts, int Audit, int Outbox)> SnapshotAsync(Guid account)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var row = await db.Accounts.AsNoTracking().Include(a => a.Regions).SingleOrDefaultAsync(a => a.Id == account);
        return (row?.Version ?? 0, string.Join(',', (row?.Regions ?? []).Select(r => r.RegionCode).Order(StringComparer.Ordinal)),
            await db.Accounts.CountAsync(), await db.AuditEntries.CountAsync(), await db.Outbox.CountAsync());
    }

    /// <summary>Once, when a SaveChanges of the server matches, commits <c>act</c> on its own connection first.</summary>
    private sealed class BeforeSave(TestDatabase database, Func<DbContext, bool> when, Func<AuthorityDbContext, Task> act) : SaveChangesInterceptor
    {
        private int _fired;

        public bool Fired => _fired == 1;

        public override async ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result,
            CancellationToken cancellationToken = default)
        {
            if (eventData.Context is { } context && when(context) && Interlocked.Exchange(ref _fired, 1) == 0)
            {
                var options = new DbContextOptionsBuilder<AuthorityDbContext>();
                options.UseAuthorityDatabase(database.Provider, database.ConnectionString);
                await using var other = new AuthorityDbContext(options.Options);
                await act(other);
            }

            return result;
        }
    }
}

public sealed class SqliteRegionRaceTests(ServerFixture<SqliteTestDatabase> fixture) : RegionRaceTests<SqliteTestDatabase>(fixture);

public sealed class PostgresRegionRaceTests(ServerFixture<PostgresTestDatabase> fixture) : RegionRaceTests<PostgresTestDatabase>(fixture);
