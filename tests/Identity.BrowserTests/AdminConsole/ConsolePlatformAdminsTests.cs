using System.Net;
using Identity.BrowserTests.Infrastructure;
using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests.AdminConsole;

/// <summary>
/// A platform administrator makes a person one from the person's page, with a confirm step (decision 0087); the
/// promoted person signs in to the console — with a second factor, as every administrator — and sees every account;
/// removed, they no longer do. Account admins see no such button and the confirm page answers them 404.
/// </summary>
public sealed class ConsolePlatformAdminsTests(RegionsFixture regions) : BrowserTest(regions)
{
    private ConsoleLayoutPage Console => new(Page);

    [Fact]
    public async Task PlatformAdmin_PromotesMember_TheySignInWithSecondFactorAndSeeEveryAccount_Demoted_NoLonger()
    {
        // Arrange: a member of account A, another account B, a platform administrator in the console.
        var (accountA, member) = await Regions.CreateAccountUserAsync("member");
        var otherName = "Other " + Guid.NewGuid().ToString("n")[..8];
        await Regions.CreateAccountUserAsync("member", otherName);
        var platformAdmin = await Regions.CreatePlatformAdminAsync();
        var memberId = await UserIdAsync(member);
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, platformAdmin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();

        // Act: from the member's page, through the confirm step.
        await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{accountA}/users/{memberId}"));
        await Expect(Page.Locator("#user-platform-admin")).ToHaveTextAsync("No.");
        await Page.GetByRole(AriaRole.Link, new() { Name = "Make platform administrator…" }).ClickAsync();
        await Expect(Console.Heading("Make a platform administrator")).ToBeVisibleAsync();
        await Expect(Page.Locator("#confirm-text")).ToContainTextAsync(member);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "platform-admin-confirm");
        await Console.Button("Make platform administrator").ClickAsync();

        // Assert: said so; audited with the platform administrator as actor; listed.
        await Expect(Console.Notice).ToContainTextAsync($"{member} is a platform administrator");
        await Expect(Page.Locator("#user-platform-admin")).ToContainTextAsync("Yes");
        Assert.True(await AuditedAsync("user.platform_admin_granted", memberId, platformAdmin));
        await Console.Navigation.GetByRole(AriaRole.Link, new() { Name = "Platform admins" }).ClickAsync();
        await Expect(Page.Locator("#platform-admins")).ToContainTextAsync(member);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "platform-admins");

        // Act + Assert: the promoted person signs in to the console in their own browser: a second factor first (they
        // had none), then every account, another account's included.
        var promoted = await Regions.NewPersonAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(promoted, Regions.Identity, member, Regions.UserPassword);
        var theirs = new ConsoleLayoutPage(promoted);
        await Expect(theirs.Heading("Accounts")).ToBeVisibleAsync();
        await Expect(promoted.Locator(".who .role")).ToHaveTextAsync("platform administrator");
        await promoted.GotoAsync(At(Regions.Identity, "/admin/accounts?q=" + Uri.EscapeDataString(otherName)));
        await Expect(promoted.GetByRole(AriaRole.Link, new() { Name = otherName })).ToBeVisibleAsync();

        // Act: the platform administrator removes it again, through the confirm step.
        await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{accountA}/users/{memberId}"));
        await Page.GetByRole(AriaRole.Link, new() { Name = "Remove platform administrator…" }).ClickAsync();
        await Expect(Console.Heading("Remove a platform administrator")).ToBeVisibleAsync();
        await Console.Button("Remove platform administrator").ClickAsync();
        await Expect(Console.Notice).ToContainTextAsync($"{member} is no longer a platform administrator");
        Assert.True(await AuditedAsync("user.platform_admin_revoked", memberId, platformAdmin));

        // Assert: their next console page refuses them (a member administers nothing).
        var refused = await promoted.GotoAsync(At(Regions.Identity, "/admin/accounts"));
        Assert.Equal((int)HttpStatusCode.Forbidden, refused!.Status);
        await promoted.Context.CloseAsync();
    }

    [Fact]
    public async Task PlatformAdminPages_AccountAdmin_NoButton_404_StaleOrMalformedConfirm_409Or400()
    {
        // Arrange: account A's admin and a member; a platform administrator's confirm page opened twice.
        var (accountA, admin) = await Regions.CreateAccountUserAsync("admin");
        var memberId = await UserIdAsync((await Regions.CreateAccountUserAsync("member")).Email);
        var ownMember = await UserIdAsync(admin);
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();

        // An account admin: no section, no navigation entry, and the pages do not exist for them.
        await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{accountA}/users/{ownMember}"));
        await Expect(Page.Locator("#user-platform-admin")).ToHaveCountAsync(0);
        await Expect(Console.Navigation.GetByRole(AriaRole.Link, new() { Name = "Platform admins" })).ToHaveCountAsync(0);
        foreach (var path in new[] { "/admin/platform-admins", $"/admin/platform-admins/{ownMember}", $"/admin/platform-admins/{memberId}" })
        {
            var response = await Page.GotoAsync(At(Regions.Identity, path));
            Assert.Equal((int)HttpStatusCode.NotFound, response!.Status);
        }

        // A platform administrator with two tabs on the same confirm page: the second confirmation is stale (409).
        var platform = await Regions.NewPersonAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(platform, Regions.Identity, await Regions.CreatePlatformAdminAsync(), Regions.UserPassword);
        await Expect(new ConsoleLayoutPage(platform).Heading("Accounts")).ToBeVisibleAsync();
        var confirm = At(Regions.Identity, $"/admin/platform-admins/{memberId}");
        var second = await platform.Context.NewPageAsync();
        await platform.GotoAsync(confirm);
        await second.GotoAsync(confirm);
        await new ConsoleLayoutPage(platform).Button("Make platform administrator").ClickAsync();
        await Expect(new ConsoleLayoutPage(platform).Notice).ToContainTextAsync("is a platform administrator");
        var stale = await second.RunAndWaitForResponseAsync(() => new ConsoleLayoutPage(second).Button("Make platform administrator").ClickAsync(),
            r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.Conflict, stale.Status);
        await Expect(new ConsoleLayoutPage(second).Alert).ToContainTextAsync("Someone else changed this person");
        await Expect(new ConsoleLayoutPage(second).Heading("Remove a platform administrator")).ToBeVisibleAsync(); // as it now is
        await ConsoleChecks.ExpectAccessibleAsync(second);

        // A malformed form: 400, nothing changed; an unknown person: 404.
        await second.GotoAsync(confirm);
        await second.Locator("#main input[name=version]").EvaluateAsync("e => e.value = 'x'");
        var malformed = await second.RunAndWaitForResponseAsync(() => new ConsoleLayoutPage(second).Button("Remove platform administrator").ClickAsync(),
            r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, malformed.Status);
        Assert.True(await IsPlatformAdminAsync(memberId));
        var unknown = await second.GotoAsync(At(Regions.Identity, $"/admin/platform-admins/{Guid.NewGuid()}"));
        Assert.Equal((int)HttpStatusCode.NotFound, unknown!.Status);

        // Tidy: the shared world keeps no extra platform administrator.
        await second.GotoAsync(confirm);
        await new ConsoleLayoutPage(second).Button("Remove platform administrator").ClickAsync();
        await Expect(new ConsoleLayoutPage(second).Notice).ToContainTextAsync("is no longer a platform administrator");
        await platform.Context.CloseAsync();
    }

    private async Task<string> UserIdAsync(string email)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync();
    }

    private async Task<bool> IsPlatformAdminAsync(string userId)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.Where(u => u.Id == userId).Select(u => u.IsPlatformAdmin).SingleAsync();
    }

    private async Task<bool> AuditedAsync(string eventType, string subjectId, string actorEmail)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var actorId = await db.Users.Where(u => u.Email == actorEmail).Select(u => u.Id).SingleAsync();
        return await db.AuditEntries.AnyAsync(e => e.EventType == eventType && e.SubjectId == subjectId && e.ActorId == actorId);
    }
}
