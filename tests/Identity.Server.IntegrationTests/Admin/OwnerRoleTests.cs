using System.Net;
using Identity.Server.IntegrationTests.Infrastructure;

namespace Identity.Server.IntegrationTests.Admin;

/// <summary>
/// The owner role: only an owner of the account or a platform administrator may make, change or remove an owner,
/// and nobody may leave an account without an active owner (409).
/// </summary>
public abstract class OwnerRoleTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>
    where TDatabase : TestDatabase, new()
{
    private sealed record Scene(HttpClient Platform, Guid Account, string OwnerId, string OwnerEmail, string AdminId, string AdminEmail, string MemberId)
    {
        public string User(string id) => $"/admin/v1/accounts/{Account}/users/{id}";
    }

    private async Task<Scene> ArrangeAsync()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AdminArrange.AccountAsync(platform, "eu");
        var ownerEmail = AdminArrange.Email("owner");
        var adminEmail = AdminArrange.Email("admin");
        return new Scene(platform, account,
            await AdminArrange.UserAsync(platform, account, ownerEmail, "owner"), ownerEmail,
            await AdminArrange.UserAsync(platform, account, adminEmail, "admin"), adminEmail,
            await AdminArrange.UserAsync(platform, account, AdminArrange.Email("member"), "member"));
    }

    private async Task<string?> RoleAsync(Scene scene, string id) =>
        (await ResponseAssert.StatusAsync(await scene.Platform.GetAsync(scene.User(id)), HttpStatusCode.OK)).GetProperty("role").GetString();

    private async Task<string?> StatusAsync(Scene scene, string id) =>
        (await ResponseAssert.StatusAsync(await scene.Platform.GetAsync(scene.User(id)), HttpStatusCode.OK)).GetProperty("status").GetString();

    [Fact]
    public async Task Create_OwnerByAccountAdmin_ForbiddenAndNobodyCreated()
    {
        var scene = await ArrangeAsync();
        var admin = await fixture.AsUserAsync(scene.AdminEmail, AdminArrange.Password);
        var email = AdminArrange.Email("usurper");

        var response = await admin.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{scene.Account}/users",
            $$"""{"email":"{{email}}","role":"owner","password":"{{AdminArrange.Password}}"}""");

        await ResponseAssert.StatusAsync(response, HttpStatusCode.Forbidden);
        var list = await ResponseAssert.StatusAsync(await scene.Platform.GetAsync($"/admin/v1/accounts/{scene.Account}/users?email={email}"), HttpStatusCode.OK);
        Assert.Empty(list.GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task Update_MemberToOwnerByAccountAdmin_ForbiddenAndRoleKept()
    {
        var scene = await ArrangeAsync();
        var admin = await fixture.AsUserAsync(scene.AdminEmail, AdminArrange.Password);

        var member = await AdminArrange.PatchCurrentAsync(admin, scene.User(scene.MemberId), """{"role":"owner"}""");
        var self = await AdminArrange.PatchCurrentAsync(admin, scene.User(scene.AdminId), """{"role":"owner"}""");

        await ResponseAssert.StatusAsync(member, HttpStatusCode.Forbidden);
        await ResponseAssert.StatusAsync(self, HttpStatusCode.Forbidden);
        Assert.Equal("member", await RoleAsync(scene, scene.MemberId));
        Assert.Equal("admin", await RoleAsync(scene, scene.AdminId));
    }

    [Fact]
    public async Task ChangeOwner_ByAccountAdmin_ForbiddenAndOwnerUntouched()
    {
        var scene = await ArrangeAsync();
        var admin = await fixture.AsUserAsync(scene.AdminEmail, AdminArrange.Password);
        var owner = scene.User(scene.OwnerId);

        var demote = await AdminArrange.PatchCurrentAsync(admin, owner, """{"role":"member"}""");
        var email = await AdminArrange.PatchCurrentAsync(admin, owner, $$"""{"email":"{{AdminArrange.Email("taken-over")}}"}""");
        var disable = await admin.PostAsync(owner + "/disable", null);
        var delete = await admin.DeleteAsync(owner);

        Assert.Equal([HttpStatusCode.Forbidden, HttpStatusCode.Forbidden, HttpStatusCode.Forbidden, HttpStatusCode.Forbidden],
            [demote.StatusCode, email.StatusCode, disable.StatusCode, delete.StatusCode]);
        var current = await ResponseAssert.StatusAsync(await scene.Platform.GetAsync(owner), HttpStatusCode.OK);
        Assert.Equal(("owner", "active", scene.OwnerEmail),
            (current.GetProperty("role").GetString(), current.GetProperty("status").GetString(), current.GetProperty("email").GetString()));
    }

    [Fact]
    public async Task Update_MemberToOwnerByOwner_Granted()
    {
        var scene = await ArrangeAsync();
        var owner = await fixture.AsUserAsync(scene.OwnerEmail, AdminArrange.Password);

        var response = await AdminArrange.PatchCurrentAsync(owner, scene.User(scene.MemberId), """{"role":"owner"}""");

        await ResponseAssert.StatusAsync(response, HttpStatusCode.OK);
        Assert.Equal("owner", await RoleAsync(scene, scene.MemberId));
    }

    [Fact]
    public async Task LastOwner_DemotedDisabledOrDeleted_ConflictAndOwnerKept()
    {
        var scene = await ArrangeAsync();
        var owner = await fixture.AsUserAsync(scene.OwnerEmail, AdminArrange.Password);
        var url = scene.User(scene.OwnerId);

        var demoteSelf = await AdminArrange.PatchCurrentAsync(owner, url, """{"role":"admin"}""");
        var demoteByPlatform = await AdminArrange.PatchCurrentAsync(scene.Platform, url, """{"role":"member"}""");
        var disable = await scene.Platform.PostAsync(url + "/disable", null);
        var delete = await scene.Platform.DeleteAsync(url);

        foreach (var response in new[] { demoteSelf, demoteByPlatform, disable, delete })
        {
            await ResponseAssert.StatusAsync(response, HttpStatusCode.Conflict);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }

        Assert.Equal("owner", await RoleAsync(scene, scene.OwnerId));
        Assert.Equal("active", await StatusAsync(scene, scene.OwnerId));
    }

    [Fact]
    public async Task OneOfTwoOwners_DemotedThenTheOtherDeleted_FirstAllowedSecondConflict()
    {
        var scene = await ArrangeAsync();
        var second = await AdminArrange.UserAsync(scene.Platform, scene.Account, AdminArrange.Email("owner2"), "owner");

        var demote = await AdminArrange.PatchCurrentAsync(scene.Platform, scene.User(second), """{"role":"admin"}""");
        var delete = await scene.Platform.DeleteAsync(scene.User(scene.OwnerId));

        await ResponseAssert.StatusAsync(demote, HttpStatusCode.OK);
        await ResponseAssert.StatusAsync(delete, HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task TwoOwners_DemoteEachOtherAtOnce_OneOwnerRemains()
    {
        var scene = await ArrangeAsync();
        var second = await AdminArrange.UserAsync(scene.Platform, scene.Account, AdminArrange.Email("owner2"), "owner");
        var firstETag = (await scene.Platform.GetAsync(scene.User(scene.OwnerId))).Headers.ETag!.Tag;
        var secondETag = (await scene.Platform.GetAsync(scene.User(second))).Headers.ETag!.Tag;

        var responses = await Task.WhenAll(
            scene.Platform.SendJsonAsync(HttpMethod.Patch, scene.User(scene.OwnerId), """{"role":"admin"}""", firstETag),
            scene.Platform.SendJsonAsync(HttpMethod.Patch, scene.User(second), """{"role":"admin"}""", secondETag));

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.Conflict], responses.Select(r => r.StatusCode).Order());
        Assert.Equal(1, new[] { await RoleAsync(scene, scene.OwnerId), await RoleAsync(scene, second) }.Count(r => r == "owner"));
    }
}

public sealed class SqliteOwnerRoleTests(ServerFixture<SqliteTestDatabase> fixture) : OwnerRoleTests<SqliteTestDatabase>(fixture);

public sealed class PostgresOwnerRoleTests(ServerFixture<PostgresTestDatabase> fixture) : OwnerRoleTests<PostgresTestDatabase>(fixture);
