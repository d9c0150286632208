using System.Net;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Admin;

/// <summary>
/// Platform administrators through the admin API (decision 0087): a platform administrator makes a person one and
/// removes it; the person's own token reaches every account, then only what their role allows; anyone else gets 403;
/// the last active one stays (409), even against thirty removals at once; malformed or unknown ids are 404 (raw malformed bytes are the bad-input corpus's).
/// </summary>
public abstract class PlatformAdminsApiTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>
    where TDatabase : TestDatabase, new()
{
    private const string Path = "/admin/v1/platform-admins";

    [Fact]
    public async Task Grant_ByPlatformAdmin_PersonReachesEveryAccount_Revoke_BackToTheirOwn_AuditedWithTheActor()
    {
        // Arrange: account A with its admin (the person), account B; the person's token.
        var platform = await fixture.PlatformAdminAsync();
        var accountA = await AdminArrange.AccountAsync(platform, "eu");
        var accountB = await AdminArrange.AccountAsync(platform, "eu");
        var email = AdminArrange.Email("promoted");
        var person = await AdminArrange.UserAsync(platform, accountA, email, AccountRoles.Admin);
        var keeper = await PromotedMemberAsync(platform, accountA); // so that the person is never the last one
        using var own = await fixture.AsUserAsync(email, AdminArrange.Password);
        Assert.Equal(HttpStatusCode.NotFound, (await own.GetAsync($"/admin/v1/accounts/{accountB}")).StatusCode);

        // Act: granted.
        var granted = await ResponseAssert.StatusAsync(await platform.PutAsync($"{Path}/{person}", null), HttpStatusCode.OK);

        // Assert: said so, listed, and the same token now reaches account B and the platform-only routes.
        Assert.True(granted.GetProperty("platformAdmin").GetBoolean());
        Assert.Equal(accountA, granted.GetProperty("accountId").GetGuid()); // still a member of their account
        var list = await ResponseAssert.StatusAsync(await platform.GetAsync(Path), HttpStatusCode.OK);
        Assert.Contains(list.GetProperty("items").EnumerateArray(), u => u.GetProperty("id").GetString() == person);
        Assert.Equal(HttpStatusCode.OK, (await own.GetAsync($"/admin/v1/accounts/{accountB}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await own.GetAsync("/admin/v1/clients")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await platform.PutAsync($"{Path}/{person}", null)).StatusCode); // idempotent

        // Act + Assert: the person, as a platform administrator, removes another one; then is removed.
        var removedKeeper = await ResponseAssert.StatusAsync(await own.DeleteAsync($"{Path}/{keeper}"), HttpStatusCode.OK);
        Assert.False(removedKeeper.GetProperty("platformAdmin").GetBoolean());
        await ResponseAssert.StatusAsync(await platform.PutAsync($"{Path}/{keeper}", null), HttpStatusCode.OK);
        await ResponseAssert.StatusAsync(await platform.DeleteAsync($"{Path}/{person}"), HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.NotFound, (await own.GetAsync($"/admin/v1/accounts/{accountB}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await own.GetAsync("/admin/v1/clients")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await own.GetAsync($"/admin/v1/accounts/{accountA}")).StatusCode); // their own account, as before

        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var entries = await db.AuditEntries.AsNoTracking().Where(e => e.SubjectId == person && e.EventType.StartsWith("user.platform_admin_"))
            .OrderBy(e => e.Id).Select(e => new { e.EventType, e.ActorType, e.ActorId }).ToListAsync();
        Assert.Equal(["user.platform_admin_granted", "user.platform_admin_revoked"], entries.Select(e => e.EventType));
        Assert.All(entries, e => Assert.Equal(("client", "platform-admin"), (e.ActorType, e.ActorId)));
        Assert.Contains(await db.AuditEntries.AsNoTracking().Where(e => e.SubjectId == keeper && e.EventType == "user.platform_admin_revoked")
            .Select(e => e.ActorId).ToListAsync(), actor => actor == person);
    }

    [Fact]
    public async Task Routes_ByAccountAdminOrMember_Forbidden_UnknownOrMalformedIds_NotFound_NothingChanged()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AdminArrange.AccountAsync(platform, "eu");
        var adminEmail = AdminArrange.Email("owner");
        await AdminArrange.UserAsync(platform, account, adminEmail, AccountRoles.Owner);
        var member = await AdminArrange.UserAsync(platform, account, AdminArrange.Email("member"), AccountRoles.Member);
        using var owner = await fixture.AsUserAsync(adminEmail, AdminArrange.Password);

        // An account's owner: 403 on every platform-admin route, their own member included.
        Assert.Equal(HttpStatusCode.Forbidden, (await owner.GetAsync(Path)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await owner.PutAsync($"{Path}/{member}", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await owner.DeleteAsync($"{Path}/{member}")).StatusCode);
        var view = await ResponseAssert.StatusAsync(await platform.GetAsync($"/admin/v1/accounts/{account}/users/{member}"), HttpStatusCode.OK);
        Assert.False(view.GetProperty("platformAdmin").GetBoolean());

        // Unknown or malformed ids, odd bodies: 404 or 400, never a 500.
        foreach (var url in new[] { $"{Path}/{Guid.NewGuid()}", $"{Path}/not-a-guid", $"{Path}/{member}x", $"{Path}/%2e%2e" })
        {
            foreach (var response in new[] { await platform.PutAsync(url, null), await platform.DeleteAsync(url) })
            {
                Assert.True(response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.BadRequest, $"{url}: {response.StatusCode}");
            }
        }

        var withBody = await platform.SendJsonAsync(HttpMethod.Put, $"{Path}/{Guid.NewGuid()}", "{\"platformAdmin\":");
        Assert.Equal(HttpStatusCode.NotFound, withBody.StatusCode);
    }

    [Fact]
    public async Task Revoke_LastActivePlatformAdmin_Conflict_EvenAgainstThirtyRemovalsAtOnce()
    {
        // Arrange: exactly three active platform administrators (every other one removed first).
        var platform = await fixture.PlatformAdminAsync();
        var account = await AdminArrange.AccountAsync(platform, "eu");
        var three = new[] { await PromotedMemberAsync(platform, account), await PromotedMemberAsync(platform, account), await PromotedMemberAsync(platform, account) };
        var others = (await ResponseAssert.StatusAsync(await platform.GetAsync(Path), HttpStatusCode.OK)).GetProperty("items").EnumerateArray()
            .Select(u => u.GetProperty("id").GetString()!).Where(id => !three.Contains(id)).ToList();
        foreach (var id in others)
        {
            await ResponseAssert.StatusAsync(await platform.DeleteAsync($"{Path}/{id}"), HttpStatusCode.OK);
        }

        // Act: thirty removals at once, ten of each.
        using var start = new SemaphoreSlim(0);
        var requests = Enumerable.Range(0, 30).Select(async i =>
        {
            await start.WaitAsync();
            var response = await platform.DeleteAsync($"{Path}/{three[i % 3]}");
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }).ToList();
        start.Release(30);
        var answers = await Task.WhenAll(requests);

        // Assert: each answered 200, 409 (the last one) or 412 (another removal of the same person won the row first),
        // never a 500; and exactly one of the three is left.
        Assert.All(answers, a => Assert.True(a.StatusCode is HttpStatusCode.OK or HttpStatusCode.Conflict or HttpStatusCode.PreconditionFailed,
            $"{a.StatusCode}: {a.Body}"));
        Assert.Contains(answers, a => a.StatusCode == HttpStatusCode.Conflict && a.Body.Contains("last active platform administrator", StringComparison.Ordinal));
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var left = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.AsNoTracking()
            .Where(u => u.IsPlatformAdmin && u.Status == UserStatus.Active).Select(u => u.Id).ToListAsync();
        Assert.Single(left);
        Assert.Contains(left[0], three);

        // The last one can be neither removed, disabled nor deleted.
        Assert.Equal(HttpStatusCode.Conflict, (await platform.DeleteAsync($"{Path}/{left[0]}")).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await platform.PostAsync($"/admin/v1/accounts/{account}/users/{left[0]}/disable", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await platform.DeleteAsync($"/admin/v1/accounts/{account}/users/{left[0]}")).StatusCode);
    }

    /// <summary>A new member of the account, made a platform administrator through the API; returns the id.</summary>
    private static async Task<string> PromotedMemberAsync(HttpClient platform, Guid account)
    {
        var id = await AdminArrange.UserAsync(platform, account, AdminArrange.Email("platform"), AccountRoles.Member);
        await ResponseAssert.StatusAsync(await platform.PutAsync($"{Path}/{id}", null), HttpStatusCode.OK);
        return id;
    }
}

public sealed class SqlitePlatformAdminsApiTests(ServerFixture<SqliteTestDatabase> fixture) : PlatformAdminsApiTests<SqliteTestDatabase>(fixture);

public sealed class PostgresPlatformAdminsApiTests(ServerFixture<PostgresTestDatabase> fixture) : PlatformAdminsApiTests<PostgresTestDatabase>(fixture);
