using System.Net;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Server.Audit;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Identity.Server.IntegrationTests.Admin;

/// <summary>Security events reach the audit trail; settings changes keep before → after; old entries expire.</summary>
public sealed class AuditEventsTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private async Task<List<AuditEntry>> EntriesAsync(Func<IQueryable<AuditEntry>, IQueryable<AuditEntry>> filter)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        return await filter(scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().AuditEntries.AsNoTracking()).ToListAsync();
    }

    [Fact]
    public async Task SignIn_FailureAndSuccess_AreAuditedWithoutThePassword()
    {
        var wrong = "Wrong-" + Guid.NewGuid().ToString("n");
        await new BrowserSession(fixture.Server).SignInAsync("/Account/Login", ServerFixture<SqliteTestDatabase>.UserEmail, wrong);
        await new BrowserSession(fixture.Server).SignInAsync("/Account/Login", ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword);

        var entries = await EntriesAsync(q => q.Where(e => e.SubjectId == fixture.UserId && e.EventType.StartsWith("signin.")));
        Assert.Contains(entries, e => e.EventType == "signin.failed");
        Assert.Contains(entries, e => e.EventType == "signin.succeeded" && e.ActorId == fixture.UserId);
        Assert.All(entries, e => Assert.DoesNotContain(wrong, e.Details ?? "", StringComparison.Ordinal));
        Assert.All(entries, e => Assert.DoesNotContain(fixture.UserPassword, e.Details ?? "", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TokenRequest_Refused_IsAuditedByClient()
    {
        await fixture.Client.ClientCredentialsAsync("svc-basic", "not-the-secret-" + Guid.NewGuid(), "api.read");

        var entries = await EntriesAsync(q => q.Where(e => e.EventType == "token.failed" && e.ClientId == "svc-basic"));
        Assert.Contains(entries, e => e.Details!.Contains("invalid_client", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AccountSettings_PutWithIfMatch_VersionedAndAuditedBeforeAfter()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = (await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts", """{"name":"Settings Co"}"""),
            HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var url = $"/admin/v1/accounts/{account}";
        var etag = (await platform.GetAsync(url)).Headers.ETag!.Tag;

        var updated = await ResponseAssert.StatusAsync(
            await platform.SendJsonAsync(HttpMethod.Put, url + "/settings", """{"mfa":{"requirement":"requiredForEveryone"}}""", etag), HttpStatusCode.OK);
        var current = (await platform.GetAsync(url)).Headers.ETag!.Tag;
        var unknownField = await platform.SendJsonAsync(HttpMethod.Put, url + "/settings", """{"mfa":{"policy":"required"}}""", current);
        var badRange = await platform.SendJsonAsync(HttpMethod.Put, url + "/settings", """{"ipAllowList":{"ranges":["10.1.0.0/8"]}}""", current);
        var notObject = await platform.SendJsonAsync(HttpMethod.Put, url + "/settings", "[1,2]", current);
        var stale = await platform.SendJsonAsync(HttpMethod.Put, url + "/settings", "{}", etag);

        Assert.Equal(2, updated.GetProperty("settingsVersion").GetInt32());
        var settings = updated.GetProperty("settings");
        Assert.Equal("requiredForEveryone", settings.GetProperty("mfa").GetProperty("requirement").GetString());
        Assert.Equal(12, settings.GetProperty("password").GetProperty("minimumLength").GetInt32()); // defaults written out
        Assert.True((await ResponseAssert.StatusAsync(unknownField, HttpStatusCode.BadRequest)).GetProperty("errors").TryGetProperty("settings.mfa.policy", out _));
        Assert.True((await ResponseAssert.StatusAsync(badRange, HttpStatusCode.BadRequest)).GetProperty("errors").TryGetProperty("settings.ipAllowList.ranges[0]", out _));
        Assert.Equal(HttpStatusCode.BadRequest, notObject.StatusCode);
        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.StatusCode);
        var audit = Assert.Single(await EntriesAsync(q => q.Where(e => e.EventType == "account.settings_changed" && e.AccountId == account)));
        Assert.Contains("\"before\":{}", audit.Details, StringComparison.Ordinal);
        Assert.Contains("\"requirement\":\"requiredForEveryone\"", audit.Details, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Retention_Sweep_DeletesOnlyEntriesOlderThanTheRetention()
    {
        await using (var scope = fixture.Server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            db.AuditEntries.Add(new AuditEntry { At = DateTimeOffset.UtcNow.AddDays(-500), EventType = "test.ancient", ActorType = "test" });
            db.AuditEntries.Add(new AuditEntry { At = DateTimeOffset.UtcNow.AddDays(-10), EventType = "test.recent", ActorType = "test" });
            await db.SaveChangesAsync();
        }

        var sweeper = fixture.Server.Services.GetServices<IHostedService>().OfType<AuditRetention>().Single();
        var deleted = await sweeper.SweepAsync(CancellationToken.None);

        Assert.True(deleted >= 1);
        Assert.Empty(await EntriesAsync(q => q.Where(e => e.EventType == "test.ancient")));
        Assert.Single(await EntriesAsync(q => q.Where(e => e.EventType == "test.recent")));
    }
}
