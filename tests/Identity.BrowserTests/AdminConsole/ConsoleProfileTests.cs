using System.Net;
using System.Text.Json;
using Identity.BrowserTests.Infrastructure;
using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Users;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests.AdminConsole;

/// <summary>
/// A user's profile edited in the console (decisions 0080, 0081, 0085): saved by the admin API's own operation (the API
/// shows it, the audit names the admin, the event is in the outbox), a stale form refused with both changes shown, the
/// API's messages beside the fields, and a new address that waits for its confirmation link.
/// </summary>
public sealed class ConsoleProfileTests(RegionsFixture regions) : BrowserTest(regions)
{
    private ConsoleLayoutPage Console => new(Page);

    [Fact]
    public async Task EditProfile_AdminChangesName_ApiShowsIt_AuditedWithAdmin_EventInOutbox()
    {
        // Arrange: an account enabled in a region, its admin and a member; the admin in the console.
        var (account, admin) = await Regions.CreateAccountUserAsync("admin");
        await EnableRegionAsync(account);
        var member = await CreateMemberAsync(account);
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        var eventsBefore = await OutboxRowsAsync(member.Id);

        // Act: from the user's page to the form; a new name, saved.
        await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{account}/users/{member.Id}"));
        await Page.GetByRole(AriaRole.Link, new() { Name = "Edit profile" }).ClickAsync();
        await Expect(Console.Heading("Edit profile")).ToBeVisibleAsync();
        await Expect(Console.Field("Email")).ToHaveValueAsync(member.Email);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "user-edit");
        await Console.Field("Name (optional)").FillAsync("Grace Hopper");
        await Console.Button("Save").ClickAsync();

        // Assert: said so on the user's page; the admin API reads the new name; the audit names the admin; one event more.
        await Expect(Console.Notice).ToHaveTextAsync("The profile was saved.");
        await Expect(Page.Locator(".facts")).ToContainTextAsync("Grace Hopper");
        using var api = await Regions.PlatformAdminAsync();
        using var user = JsonDocument.Parse(await api.GetStringAsync($"/admin/v1/accounts/{account}/users/{member.Id}"));
        Assert.Equal("Grace Hopper", user.RootElement.GetProperty("displayName").GetString());
        Assert.Equal(member.Email, user.RootElement.GetProperty("email").GetString());
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var adminId = await db.Users.Where(u => u.Email == admin).Select(u => u.Id).SingleAsync();
        var audit = await db.AuditEntries.Where(e => e.EventType == "user.updated" && e.SubjectId == member.Id).ToListAsync();
        var entry = Assert.Single(audit);
        Assert.Equal(adminId, entry.ActorId);
        Assert.Contains("Grace Hopper", entry.Details, StringComparison.Ordinal);
        var events = await OutboxRowsAsync(member.Id);
        Assert.Equal(eventsBefore.Count + 1, events.Count);
        Assert.Contains("Grace Hopper", events[^1], StringComparison.Ordinal);

        // Saving the form unchanged writes nothing.
        await Page.GetByRole(AriaRole.Link, new() { Name = "Edit profile" }).ClickAsync();
        await Console.Button("Save").ClickAsync();
        await Expect(Console.Notice).ToHaveTextAsync("Nothing was changed.");
        Assert.Equal(events.Count, (await OutboxRowsAsync(member.Id)).Count);
    }

    [Fact]
    public async Task EditProfile_StaleFormFromSecondBrowser_409ShowsTheirChangeAndYours()
    {
        // Arrange: the account's admin and a platform administrator, each in their own browser, open the same form.
        var (account, admin) = await Regions.CreateAccountUserAsync("admin");
        var member = await CreateMemberAsync(account);
        var platformAdmin = await Regions.CreatePlatformAdminAsync();
        var editPath = At(Regions.Identity, $"/admin/accounts/{account}/users/{member.Id}/edit");
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        var other = await Regions.NewPersonAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(other, Regions.Identity, platformAdmin, Regions.UserPassword);
        await Expect(new ConsoleLayoutPage(other).Heading("Accounts")).ToBeVisibleAsync();
        await Page.GotoAsync(editPath);
        await other.GotoAsync(editPath);

        // Act: the platform admin renames the member first; the account admin then saves another name from the older form.
        await new ConsoleLayoutPage(other).Field("Name (optional)").FillAsync("Their Name");
        await new ConsoleLayoutPage(other).Button("Save").ClickAsync();
        await Expect(new ConsoleLayoutPage(other).Notice).ToHaveTextAsync("The profile was saved.");
        await Console.Field("Name (optional)").FillAsync("Your Name");
        var refused = await Page.RunAndWaitForResponseAsync(() => Console.Button("Save").ClickAsync(), r => r.Request.Method == "POST");

        // Assert: 409; their change (now in effect) and yours (not saved); the form at the current values.
        Assert.Equal((int)HttpStatusCode.Conflict, refused.Status);
        var stale = Page.Locator("#stale");
        await Expect(stale).ToContainTextAsync("Their change, now in effect");
        await Expect(stale).ToContainTextAsync("Their Name");
        await Expect(stale).ToContainTextAsync("Your change, not saved");
        await Expect(stale).ToContainTextAsync("Your Name");
        await Expect(Console.Field("Name (optional)")).ToHaveValueAsync("Their Name");
        Assert.Equal("Their Name", await DisplayNameAsync(member.Id));
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "user-edit-stale");

        // A second save, made on what is there now, goes through.
        await Console.Field("Name (optional)").FillAsync("Your Name");
        await Console.Button("Save").ClickAsync();
        await Expect(Console.Notice).ToHaveTextAsync("The profile was saved.");
        Assert.Equal("Your Name", await DisplayNameAsync(member.Id));
        await other.Context.CloseAsync();
    }

    [Fact]
    public async Task EditProfile_BadValues_MessagesBesideTheFields_400_NothingChanged()
    {
        // Arrange: an account admin in the console, on a member's form; another user's address exists.
        var (account, admin) = await Regions.CreateAccountUserAsync("admin");
        var member = await CreateMemberAsync(account);
        var (_, taken) = await Regions.CreateAccountUserAsync("member");
        var editPath = At(Regions.Identity, $"/admin/accounts/{account}/users/{member.Id}/edit");
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();

        // A malformed address: the API's message beside the field, announced, the field marked invalid.
        await Page.GotoAsync(editPath);
        await Console.Field("Email").FillAsync("not an email");
        var invalid = await Page.RunAndWaitForResponseAsync(() => Console.Button("Save").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, invalid.Status);
        await Expect(Page.Locator("#err-email")).ToContainTextAsync("A valid email address");
        await Expect(Console.Alert).ToContainTextAsync("A valid email address");
        await Expect(Console.Field("Email")).ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(Console.Field("Email")).ToHaveValueAsync("not an email"); // what was typed, to correct
        await ConsoleChecks.ExpectAccessibleAsync(Page);

        // Another user's address, a role that does not exist, an owner made by an admin: each refused with its reason.
        await Page.GotoAsync(editPath);
        await Console.Field("Email").FillAsync(taken);
        var inUse = await Page.RunAndWaitForResponseAsync(() => Console.Button("Save").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, inUse.Status);
        await Expect(Page.Locator("#err-email")).ToBeVisibleAsync();
        await Page.GotoAsync(editPath);
        await Page.Locator("#role").EvaluateAsync("e => { e.options[0].value = 'emperor'; e.selectedIndex = 0; }");
        var badRole = await Page.RunAndWaitForResponseAsync(() => Console.Button("Save").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, badRole.Status);
        await Expect(Page.Locator("#err-role")).ToContainTextAsync("The role must be");
        await Page.GotoAsync(editPath);
        await Page.Locator("#role").SelectOptionAsync("owner");
        var owner = await Page.RunAndWaitForResponseAsync(() => Console.Button("Save").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.Forbidden, owner.Status);
        await Expect(Console.Alert).ToContainTextAsync("Only an owner of the account");

        // A version that is not a number, a form without its anti-forgery token: 400, never a 500.
        await Page.GotoAsync(editPath);
        await Page.Locator("input[name=Version]").EvaluateAsync("e => e.value = '1e9999'");
        var malformed = await Page.RunAndWaitForResponseAsync(() => Console.Button("Save").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, malformed.Status);
        await Expect(Console.Alert).ToContainTextAsync("reload the page");
        await Page.GotoAsync(editPath);
        await Page.Locator("#main input[name=__RequestVerificationToken]").EvaluateAsync("e => e.remove()");
        var forged = await Page.RunAndWaitForResponseAsync(() => Console.Button("Save").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, forged.Status);

        // Nothing was changed by any of them; another account's user, or no user, is 404.
        await using (var scope = Regions.IdentityServices.CreateAsyncScope())
        {
            var user = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.AsNoTracking().SingleAsync(u => u.Id == member.Id);
            Assert.Equal((member.Email, AccountRoles.Member, member.Version), (user.Email, user.Role, user.Version));
        }

        var (otherAccount, _) = await Regions.CreateAccountUserAsync("member");
        foreach (var path in new[] { $"/admin/accounts/{otherAccount}/users/{member.Id}/edit", $"/admin/accounts/{account}/users/{Guid.NewGuid()}/edit" })
        {
            var response = await Page.GotoAsync(At(Regions.Identity, path));
            Assert.Equal((int)HttpStatusCode.NotFound, response!.Status);
        }
    }

    [Fact]
    public async Task EditProfile_NewAddressOfVerifiedUser_PendingShownWithSentTime_ResentLinkConfirmsIt()
    {
        // Arrange: a verified member; their admin in the console.
        var (account, admin) = await Regions.CreateAccountUserAsync("admin");
        var member = await CreateMemberAsync(account);
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        var userPath = At(Regions.Identity, $"/admin/accounts/{account}/users/{member.Id}");
        await Page.GotoAsync(userPath);
        await Expect(Page.Locator("#user-pending-email")).ToHaveCountAsync(0);
        await Expect(Console.Button("Re-send confirmation link")).ToHaveCountAsync(0); // nothing to confirm

        // Act: a new address.
        var moved = $"moved-{Guid.NewGuid():n}@example.test";
        var before = DateTimeOffset.UtcNow;
        await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{account}/users/{member.Id}/edit"));
        await Console.Field("Email").FillAsync(moved);
        await Console.Button("Save").ClickAsync();

        // Assert: the page says a confirmation went to the new address; the user keeps the current one until then, and
        // their page shows the pending change with when its link was sent.
        await Expect(Console.Notice).ToContainTextAsync($"A confirmation link was sent to {moved}");
        await Expect(Console.Heading(member.Email)).ToBeVisibleAsync();
        var pending = Page.Locator("#user-pending-email");
        await Expect(pending).ToContainTextAsync($"to {moved}, sent ");
        var sentAt = DateTimeOffset.Parse(await pending.Locator("time").First.GetAttributeAsync("datetime") ?? "", System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(sentAt, before.AddSeconds(-5), DateTimeOffset.UtcNow.AddSeconds(5));
        await Expect(Page.Locator("#user-email-verified")).ToHaveTextAsync("yes"); // the current address stays proven
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "user-pending-email");
        var first = await Regions.Smtp.WaitForAsync(moved);
        using var api = await Regions.PlatformAdminAsync();
        using (var user = JsonDocument.Parse(await api.GetStringAsync($"/admin/v1/accounts/{account}/users/{member.Id}")))
        {
            Assert.Equal(member.Email, user.RootElement.GetProperty("email").GetString());
            Assert.Equal(moved, user.RootElement.GetProperty("pendingEmail").GetString());
        }

        // Act: the admin re-sends the link; the person confirms with the new one.
        await Console.Button("Re-send confirmation link").ClickAsync();
        await Expect(Console.Notice).ToContainTextAsync("A new confirmation link was sent");
        var firstLink = TestSmtpServer.LinkIn(first, "/Account/VerifyEmail");
        var second = TestSmtpServer.LinkIn(
            await Regions.Smtp.WaitForAsync(moved, where: m => TestSmtpServer.LinkIn(m, "/Account/VerifyEmail") != firstLink), "/Account/VerifyEmail");
        var person = await Regions.NewPersonAsync();
        await person.GotoAsync(second.AbsoluteUri);
        await person.GetByRole(AriaRole.Button, new() { Name = "Confirm this address" }).ClickAsync();
        await Expect(person.GetByRole(AriaRole.Heading, new() { Level = 2 })).ToHaveTextAsync("Your address is confirmed");
        await person.Context.CloseAsync();

        // Assert: the address moved, verified; nothing pending; the audit has the re-send with the admin as actor.
        await Page.GotoAsync(userPath);
        await Expect(Console.Heading(moved)).ToBeVisibleAsync();
        await Expect(Page.Locator("#user-pending-email")).ToHaveCountAsync(0);
        await Expect(Page.Locator("#user-email-verified")).ToHaveTextAsync("yes");
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var adminId = await db.Users.Where(u => u.Email == admin).Select(u => u.Id).SingleAsync();
        Assert.True(await db.AuditEntries.AnyAsync(e => e.EventType == "user.email_verification_sent" && e.SubjectId == member.Id && e.ActorId == adminId));
    }

    [Fact]
    public async Task MarkVerified_UnverifiedAddress_ConfirmStep_PageSaysVerified_AuditedWithAdmin_StaleOr404Refused()
    {
        // Arrange: an account in a region with a member whose address is unverified; the account's admin in the console.
        var (account, admin) = await Regions.CreateAccountUserAsync("admin");
        await EnableRegionAsync(account);
        var member = await CreateMemberAsync(account, verified: false);
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        var userPath = At(Regions.Identity, $"/admin/accounts/{account}/users/{member.Id}");
        var verifyPath = userPath + "/verify-email";
        await Page.GotoAsync(userPath);
        await Expect(Page.Locator("#user-email-verified")).ToHaveTextAsync("no");
        var eventsBefore = await OutboxRowsAsync(member.Id);
        var laterTab = await Page.Context.NewPageAsync(); // the same admin's second tab, on the confirm page made now
        await laterTab.GotoAsync(verifyPath);

        // Act: the user's page, Mark … verified…, the confirm step.
        await Console.Link($"Mark {member.Email} verified…").ClickAsync();
        await Expect(Console.Heading("Mark the address verified")).ToBeVisibleAsync();
        await Expect(Page.Locator("#confirm-text")).ToContainTextAsync(member.Email);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "user-verify-email");
        await Console.Button("Mark verified").ClickAsync();

        // Assert: back on the user's page, verified, no more link; the API agrees; one audit entry naming the admin and
        // one event more in the outbox for the region (the operation's own).
        await Expect(Console.Notice).ToHaveTextAsync($"{member.Email} is marked verified.");
        await Expect(Page.Locator("#user-email-verified")).ToHaveTextAsync("yes");
        await Expect(Page.Locator("#verify-email")).ToHaveCountAsync(0);
        using (var api = await Regions.PlatformAdminAsync())
        {
            using var user = JsonDocument.Parse(await api.GetStringAsync($"/admin/v1/accounts/{account}/users/{member.Id}"));
            Assert.True(user.RootElement.GetProperty("emailVerified").GetBoolean());
        }

        await using (var scope = Regions.IdentityServices.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            var adminId = await db.Users.Where(u => u.Email == admin).Select(u => u.Id).SingleAsync();
            var entry = Assert.Single(await db.AuditEntries.Where(e => e.EventType == "user.email_verified" && e.SubjectId == member.Id).ToListAsync());
            Assert.Equal(adminId, entry.ActorId);
        }

        Assert.Equal(eventsBefore.Count + 1, (await OutboxRowsAsync(member.Id)).Count);

        // The second tab's confirmation, made before: 409, shown as the user now is; nothing more written.
        var stale = await laterTab.RunAndWaitForResponseAsync(
            () => laterTab.GetByRole(AriaRole.Button, new() { Name = "Mark verified", Exact = true }).ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.Conflict, stale.Status);
        await Expect(laterTab.GetByRole(AriaRole.Alert)).ToContainTextAsync(Identity.Server.AdminConsole.Pages.Users.VerifyUserEmailModel.StaleMessage);
        await Expect(laterTab.Locator("#confirm-text")).ToContainTextAsync("verified already");
        Assert.Equal(eventsBefore.Count + 1, (await OutboxRowsAsync(member.Id)).Count);

        // The form without its anti-forgery token: 400.
        var unsigned = Page.APIRequest.CreateFormData();
        unsigned.Set("version", member.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal((int)HttpStatusCode.BadRequest, (await Page.APIRequest.PostAsync(verifyPath, new() { Form = unsigned, MaxRedirects = 0 })).Status);

        // Another account's admin: the user's page and the confirm page are absent (404), and so is a post with a valid token.
        var unverified = await CreateMemberAsync(account, verified: false);
        var (_, stranger) = await Regions.CreateAccountUserAsync("admin");
        var other = await Regions.NewPersonAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(other, Regions.Identity, stranger, Regions.UserPassword);
        await Expect(new ConsoleLayoutPage(other).Heading("Accounts")).ToBeVisibleAsync();
        var token = await other.Locator("input[name=__RequestVerificationToken]").First.InputValueAsync();
        var theirPath = At(Regions.Identity, $"/admin/accounts/{account}/users/{unverified.Id}");
        Assert.Equal((int)HttpStatusCode.NotFound, (await other.GotoAsync(theirPath))!.Status);
        Assert.Equal((int)HttpStatusCode.NotFound, (await other.GotoAsync(theirPath + "/verify-email"))!.Status);
        var form = other.APIRequest.CreateFormData();
        form.Set("version", unverified.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));
        form.Set("__RequestVerificationToken", token);
        Assert.Equal((int)HttpStatusCode.NotFound, (await other.APIRequest.PostAsync(theirPath + "/verify-email", new() { Form = form, MaxRedirects = 0 })).Status);
        await Page.GotoAsync(theirPath);
        await Expect(Page.Locator("#user-email-verified")).ToHaveTextAsync("no");
    }

    private async Task<Member> CreateMemberAsync(Guid account, bool verified = true)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var created = await scope.ServiceProvider.GetRequiredService<UserOperations>().CreateAsync(
            new NewUser(account, $"member-{Guid.NewGuid():n}@example.test", "Grace", AccountRoles.Member, EmailConfirmed: verified), Regions.UserPassword,
            new Actor("test", null, null, null), CancellationToken.None);
        Assert.True(created.Result.Succeeded, created.Result.ToString());
        return new Member(created.User.Id, created.User.Email!, created.User.Version);
    }

    private sealed record Member(string Id, string Email, long Version);

    private async Task EnableRegionAsync(Guid accountId)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var actor = new Actor("test", null, null, null);
        var (put, _) = await scope.ServiceProvider.GetRequiredService<RegionOperations>().PutAsync("profile-eu", "Profile tests", actor, CancellationToken.None);
        Assert.True(put.Succeeded, put.ToString());
        var account = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Accounts.SingleAsync(a => a.Id == accountId);
        var enabled = await scope.ServiceProvider.GetRequiredService<AccountOperations>().EnableRegionAsync(account, "profile-eu", actor, CancellationToken.None);
        Assert.True(enabled.Succeeded, enabled.ToString());
    }

    /// <summary>The payloads of the user's events in the outbox, oldest first.</summary>
    private async Task<List<string>> OutboxRowsAsync(string userId)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Outbox.AsNoTracking()
            .Where(m => m.UserId == userId).OrderBy(m => m.Id).Select(m => m.Payload).ToListAsync();
    }

    private async Task<string?> DisplayNameAsync(string userId)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.Where(u => u.Id == userId).Select(u => u.DisplayName).SingleAsync();
    }
}
