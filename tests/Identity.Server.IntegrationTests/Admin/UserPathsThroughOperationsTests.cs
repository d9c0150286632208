using System.Net;
using System.Net.Http.Headers;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Admin;

/// <summary>
/// The safety net under the user operations: a server whose outbox interceptor fails any SaveChanges carrying a user
/// change a region would see that no operation made (<see cref="ChangesOutsideOperations"/>, mode Fail), driven through
/// every path that changes a user — admin API, password page, lockout. A path that forgets its operation answers 500.
/// </summary>
public sealed class UserPathsThroughOperationsTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string Password = "Correct-Horse-Battery-9";

    [Fact]
    public async Task EveryUserPath_ServerFailingChangesOutsideOperations_AllSucceed()
    {
        await using var host = fixture.StartServer(s => s[ChangesOutsideOperations.SettingName] = nameof(OutsideChangeMode.Fail));
        var token = (await ResponseAssert.StatusAsync(
            await fixture.Client.ClientCredentialsAsync("platform-admin", fixture.BasicSecret, "identity.admin"), HttpStatusCode.OK))
            .GetProperty("access_token").GetString()!;
        using var admin = host.CreateClient();
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Put, "/admin/v1/regions/eu", """{"displayName":"Europe"}"""), HttpStatusCode.OK);
        var account = (await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts",
            """{"name":"Net Co","regions":["eu"]}"""), HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var etag = (await admin.GetAsync($"/admin/v1/accounts/{account}")).Headers.ETag!.Tag;
        await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Put, $"/admin/v1/accounts/{account}/settings",
            """{"lockout":{"maxFailedAttempts":3,"duration":"00:10:00"}}""", etag), HttpStatusCode.OK);
        var users = $"/admin/v1/accounts/{account}/users";

        // Admin API: create, invite, change profile, disable, enable, reset MFA, revoke sessions, delete.
        var email = $"net-{Guid.NewGuid():n}@example.test";
        var id = (await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, users,
            $$"""{"email":"{{email}}","role":"member","password":"{{Password}}"}"""), HttpStatusCode.Created)).GetProperty("user").GetProperty("id").GetString();
        var invited = (await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, users,
            $$"""{"email":"invited-{{Guid.NewGuid():n}}@example.test","role":"member"}"""), HttpStatusCode.Created)).GetProperty("user").GetProperty("id").GetString();
        await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Patch, $"{users}/{id}", """{"displayName":"Renamed"}""", "\"1\""), HttpStatusCode.OK);
        foreach (var step in new[] { "disable", "enable", "reset-mfa", "revoke-sessions" })
        {
            await ResponseAssert.StatusAsync(await admin.PostAsync($"{users}/{id}/{step}", null), HttpStatusCode.OK);
        }

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"{users}/{invited}")).StatusCode);

        // The password page.
        var browser = new BrowserSession(null, host.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true }));
        await browser.SignInAsync("/Account/Login", email, Password);
        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync("/Account/Password"), HttpStatusCode.OK);
        await ResponseAssert.HtmlAsync(await browser.SubmitAsync("/Account/Password", page, new Dictionary<string, string>
        {
            ["Input.CurrentPassword"] = Password,
            ["Input.NewPassword"] = "Another-Horse-Battery-7",
            ["Input.ConfirmPassword"] = "Another-Horse-Battery-7",
        }), HttpStatusCode.OK);

        // Lockout: the third wrong password locks the user out.
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var stranger = new BrowserSession(null, host.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true }));
            Assert.Equal(HttpStatusCode.OK, (await stranger.SignInAsync("/Account/Login", email, $"Wrong-password-{attempt}")).StatusCode);
        }

        var locked = await ResponseAssert.StatusAsync(await admin.GetAsync($"{users}/{id}"), HttpStatusCode.OK);
        var audit = await ResponseAssert.StatusAsync(await admin.GetAsync($"/admin/v1/audit?subject={id}&type=user.locked_out"), HttpStatusCode.OK);
        Assert.Contains(audit.GetProperty("items").EnumerateArray(), e => e.GetProperty("eventType").GetString() == "user.locked_out");
        Assert.True(locked.GetProperty("version").GetInt64() >= 7); // created 1, renamed, disabled, enabled, reset, revoked, locked out
    }

    [Fact]
    public async Task ChangesOutsideAnOperation_OnTheTestHost_SaveFailsAndNothingIsWritten()
    {
        // Arrange: every test host fails such changes (decision 0069); a member of an account, made through the admin API.
        var admin = await fixture.PlatformAdminAsync();
        var account = (await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts", """{"name":"Escape Co"}"""),
            HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var id = (await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{account}/users",
            $$"""{"email":"escape-{{Guid.NewGuid():n}}@example.test","role":"member","password":"{{Password}}"}"""), HttpStatusCode.Created))
            .GetProperty("user").GetProperty("id").GetString()!;
        int rowsBefore;
        await using (var scope = fixture.Server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            rowsBefore = await db.Outbox.CountAsync();

            // Act: a user's name and an account's name changed straight on the context, as a forgetful path would.
            (await db.Users.SingleAsync(u => u.Id == id)).DisplayName = "Renamed behind its operation";
            var user = await Assert.ThrowsAsync<InvalidOperationException>(() => db.SaveChangesAsync());
            db.ChangeTracker.Clear();
            (await db.Accounts.SingleAsync(a => a.Id == account)).Name = "Renamed behind its operation";
            var accountError = await Assert.ThrowsAsync<InvalidOperationException>(() => db.SaveChangesAsync());

            // Assert: each names what escaped.
            Assert.Contains($"user {id} reached SaveChanges outside any operation", user.Message, StringComparison.Ordinal);
            Assert.Contains($"account {account} reached SaveChanges outside any operation", accountError.Message, StringComparison.Ordinal);
        }

        // ... and nothing of either was written: no name, no event.
        await using var check = fixture.Server.Services.CreateAsyncScope();
        var fresh = check.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        Assert.NotEqual("Renamed behind its operation", (await fresh.Users.AsNoTracking().SingleAsync(u => u.Id == id)).DisplayName);
        Assert.NotEqual("Renamed behind its operation", (await fresh.Accounts.AsNoTracking().SingleAsync(a => a.Id == account)).Name);
        Assert.Equal(rowsBefore, await fresh.Outbox.CountAsync());
    }
}
