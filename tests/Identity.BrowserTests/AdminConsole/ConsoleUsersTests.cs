using System.Net;
using Identity.BrowserTests.Infrastructure;
using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests.AdminConsole;

/// <summary>
/// An account's users in the console: invited (the one-time link shown once), the person sets a password and signs in,
/// an account admin disables them and their next sign-in fails; every action through the admin API's operations and
/// audited with the admin as actor. Outsiders: another account's users answer 404, a form without its anti-forgery
/// token 400, malformed values a clear error (400), a stale form 409 with the user as they now are.
/// </summary>
public sealed class ConsoleUsersTests(RegionsFixture regions) : BrowserTest(regions)
{
    private const string PersonPassword = "Correct-Horse-Battery-9";

    private ConsoleLayoutPage Console => new(Page);

    [Fact]
    public async Task Users_PlatformAdminInvites_PersonSetsPasswordAndSignsIn_AccountAdminDisables_NextSignInFails()
    {
        // Arrange: an account with its admin, and a platform administrator in the console.
        var (accountId, accountAdmin) = await Regions.CreateAccountUserAsync("admin");
        var platformAdmin = await Regions.CreatePlatformAdminAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, platformAdmin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();

        // Act: the platform admin invites a member from the account's users.
        await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{accountId}"));
        await Page.Locator("#account-users").ClickAsync();
        await Page.Locator("#new-user").ClickAsync();
        await Expect(Console.Heading("Create or invite a user")).ToBeVisibleAsync();
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "user-new");
        var person = $"invited-{Guid.NewGuid():n}@example.test";
        await Page.GetByLabel("Email", new() { Exact = true }).FillAsync(person);
        await Page.GetByRole(AriaRole.Button, new() { Name = "Create user" }).ClickAsync();

        // Assert: the link, once, on the invitation's own address.
        await Expect(Console.Heading("Invitation ready")).ToBeVisibleAsync();
        var link = await Page.GetByLabel("Invitation link", new() { Exact = true }).InputValueAsync();
        Assert.StartsWith(At(Regions.Identity, "/Account/Invitation?token="), link);
        var token = Uri.UnescapeDataString(link[(link.IndexOf("token=", StringComparison.Ordinal) + 6)..]);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "user-invited");
        await Page.GetByRole(AriaRole.Link, new() { Name = "Open " + person }).ClickAsync();
        await Expect(Page.Locator("#user-status")).ToHaveTextAsync("active");
        Assert.DoesNotContain(token, await Page.ContentAsync(), StringComparison.Ordinal);
        await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{accountId}/users"));
        Assert.DoesNotContain(token, await Page.ContentAsync(), StringComparison.Ordinal);

        // Act: the person opens the link in their own browser and chooses a password; later signs in afresh.
        var invited = await Regions.NewPersonAsync();
        await invited.GotoAsync(link);
        await invited.GetByLabel("New password", new() { Exact = true }).FillAsync(PersonPassword);
        await invited.GetByLabel("Confirm new password", new() { Exact = true }).FillAsync(PersonPassword);
        await invited.GetByRole(AriaRole.Button, new() { Name = "Set the password and sign in" }).ClickAsync();
        await Expect(new HomePage(invited).SignedInAs(person)).ToBeVisibleAsync();
        await invited.Context.CloseAsync();
        await ExpectSignInAsync(person, succeeds: true);

        // Act: the account's admin (in their own browser) finds the person and disables them.
        var admin = await Regions.NewPersonAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(admin, Regions.Identity, accountAdmin, Regions.UserPassword);
        await admin.GotoAsync(At(Regions.Identity, $"/admin/accounts/{accountId}/users"));
        var row = admin.Locator("#users tbody tr").Filter(new() { HasText = person });
        await Expect(row).ToContainTextAsync("member");
        await Expect(row.Locator("time")).ToBeVisibleAsync(); // a last sign-in is recorded
        await ConsoleChecks.ExpectAccessibleAsync(admin);
        await ConsoleWorld.ScreenshotAsync(admin, "users");
        await row.GetByRole(AriaRole.Link, new() { Name = person }).ClickAsync();
        await Expect(admin.Locator("#user-factors")).ToHaveTextAsync("none");
        await ConsoleChecks.ExpectAccessibleAsync(admin);
        await ConsoleWorld.ScreenshotAsync(admin, "user");
        await admin.GetByRole(AriaRole.Button, new() { Name = "Disable" }).ClickAsync();

        // Assert: disabled, said so, audited with the admin as actor; the person's next sign-in fails.
        await Expect(new ConsoleLayoutPage(admin).Notice).ToContainTextAsync("The user is disabled");
        await Expect(admin.Locator("#user-status")).ToHaveTextAsync("disabled");
        await ExpectSignInAsync(person, succeeds: false);
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var adminId = await db.Users.Where(u => u.Email == accountAdmin).Select(u => u.Id).SingleAsync();
        var personId = await db.Users.Where(u => u.Email == person).Select(u => u.Id).SingleAsync();
        Assert.True(await db.AuditEntries.AnyAsync(e => e.EventType == "user.disabled" && e.SubjectId == personId && e.ActorId == adminId));
    }

    [Fact]
    public async Task Users_OutsidersAndBadForms_404ForAnotherAccount_400WithoutAntiforgery_ClearErrorsForMalformedValues_409WhenStale()
    {
        // Arrange: an admin of account A with a member, and account B with its member; A's admin in the console.
        var (accountA, adminA) = await Regions.CreateAccountUserAsync("admin");
        var (accountB, memberB) = await Regions.CreateAccountUserAsync("member");
        var memberA = await InviteAsync(accountA, $"member-a-{Guid.NewGuid():n}@example.test");
        var userB = await UserIdAsync(memberB);
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, adminA, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();

        // Another account's users, by address, even under A's own account: as if they did not exist.
        foreach (var path in new[]
        {
            $"/admin/accounts/{accountB}/users", $"/admin/accounts/{accountB}/users/new", $"/admin/accounts/{accountB}/users/{userB}",
            $"/admin/accounts/{accountA}/users/{userB}", $"/admin/accounts/{accountA}/users/not-a-guid", $"/admin/accounts/{Guid.NewGuid()}/users",
        })
        {
            var response = await Page.GotoAsync(At(Regions.Identity, path));
            Assert.Equal((int)HttpStatusCode.NotFound, response!.Status);
            await Expect(Console.Heading("Not found")).ToBeVisibleAsync();
        }

        // A form of A's own user, its anti-forgery token taken out: refused with 400, nothing changed.
        var userPage = At(Regions.Identity, $"/admin/accounts/{accountA}/users/{memberA}");
        await Page.GotoAsync(userPage);
        await Page.Locator("form:has(#disable) input[name=__RequestVerificationToken]").EvaluateAsync("e => e.remove()");
        var refused = await Page.RunAndWaitForResponseAsync(() => Page.Locator("#disable").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, refused.Status);
        await Expect(Console.Heading("Request refused")).ToBeVisibleAsync();
        Assert.Equal(UserStatus.Active, await StatusAsync(memberA));

        // The same form carrying a version that is not a number: a clear refusal, not an error page.
        await Page.GotoAsync(userPage);
        await Page.Locator("form:has(#disable) input[name=version]").EvaluateAsync("e => e.value = 'abc'");
        var malformed = await Page.RunAndWaitForResponseAsync(() => Page.Locator("#disable").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, malformed.Status);
        await Expect(Console.Alert).ToContainTextAsync("reload the page");
        Assert.Equal(UserStatus.Active, await StatusAsync(memberA));

        // Two tabs on the same user: the second tab's form is stale once the first disabled the user.
        var second = await Context.NewPageAsync();
        await second.GotoAsync(userPage);
        await Page.GotoAsync(userPage);
        await Page.Locator("#disable").ClickAsync();
        await Expect(Page.Locator("#user-status")).ToHaveTextAsync("disabled");
        var stale = await second.RunAndWaitForResponseAsync(() => second.Locator("#revoke-sessions").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.Conflict, stale.Status);
        await Expect(second.GetByRole(AriaRole.Alert)).ToContainTextAsync("Someone else changed this user");
        await Expect(second.Locator("#user-status")).ToHaveTextAsync("disabled"); // as it now is
        await ConsoleChecks.ExpectAccessibleAsync(second);

        // Malformed list values: a clear message and 400.
        foreach (var query in new[] { "?after=%25%25%25", "?status=deleted", "?status=1", "?email=" + new string('x', 300) })
        {
            var response = await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{accountA}/users{query}"));
            Assert.Equal((int)HttpStatusCode.BadRequest, response!.Status);
            await Expect(Console.Alert).ToBeVisibleAsync();
        }

        // Create with a malformed email and an unknown role: each message beside its field, announced.
        await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{accountA}/users/new"));
        await Page.GetByLabel("Email", new() { Exact = true }).FillAsync("not an email");
        await Page.Locator("#role").EvaluateAsync("e => { e.options[0].value = 'emperor'; }");
        var invalid = await Page.RunAndWaitForResponseAsync(() => Page.GetByRole(AriaRole.Button, new() { Name = "Create user" }).ClickAsync(),
            r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, invalid.Status);
        await Expect(Console.Alert).ToContainTextAsync("A valid email address");
        await Expect(Page.Locator("#err-email")).ToContainTextAsync("A valid email address");
        await Expect(Page.Locator("#err-role")).ToContainTextAsync("The role must be");
        await Expect(Page.GetByLabel("Email", new() { Exact = true })).ToHaveAttributeAsync("aria-invalid", "true");
        await ConsoleChecks.ExpectAccessibleAsync(Page);
    }

    [Fact]
    public async Task Users_List_FiltersByEmailAndStatus_PagesFiftyAtATime()
    {
        // Arrange: an account with its admin and 52 invited users, one of them disabled.
        var (account, admin) = await Regions.CreateAccountUserAsync("admin");
        var ids = new List<string>();
        for (var i = 0; i < 52; i++)
        {
            ids.Add(await InviteAsync(account, $"paged-{i:00}-{Guid.NewGuid():n}@example.test"));
        }

        await using (var scope = Regions.IdentityServices.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            var user = await db.Users.SingleAsync(u => u.Id == ids[7]);
            Assert.True((await scope.ServiceProvider.GetRequiredService<UserOperations>()
                .DisableAsync(user, new Actor("test", null, null, null), CancellationToken.None)).Succeeded);
        }

        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();

        // Act + Assert: 50 on the first page, the other 3 on the next.
        await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{account}/users"));
        await Expect(Page.Locator("#users tbody tr")).ToHaveCountAsync(50);
        await Page.GetByRole(AriaRole.Link, new() { Name = "Next page" }).ClickAsync();
        await Expect(Page.Locator("#users tbody tr")).ToHaveCountAsync(3);
        await Expect(Page.GetByRole(AriaRole.Link, new() { Name = "Next page" })).ToHaveCountAsync(0);

        // Filters: by part of the email, by status.
        await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{account}/users"));
        await Page.GetByLabel("Email contains").FillAsync("paged-1");
        await Page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await Expect(Page.Locator("#users tbody tr")).ToHaveCountAsync(10);
        await Page.GetByLabel("Email contains").FillAsync("");
        await Page.GetByLabel("Status").SelectOptionAsync("disabled");
        await Page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await Expect(Page.Locator("#users tbody tr")).ToHaveCountAsync(1);
        await Expect(Page.Locator("#users tbody tr")).ToContainTextAsync("paged-07-");
        await ConsoleChecks.ExpectAccessibleAsync(Page);
    }

    [Fact]
    public async Task Users_List_MarksPendingAddresses_StatementsDoNotGrowWithTheRows()
    {
        // Arrange: an Identity of its own whose statements are counted per request; its platform admin; an account
        // with two verified users, one of them moving to a new address (decision 0085: pending until its link is used).
        var statements = new RequestStatements();
        await using var identity = await Regions.StartIdentityAsync(TimeProvider.System, statements.AddTo);
        var admin = await Regions.CreatePlatformAdminAsync(identity.Services);
        Guid account;
        await using (var scope = identity.Services.CreateAsyncScope())
        {
            var (made, created) = await scope.ServiceProvider.GetRequiredService<AccountOperations>()
                .CreateAsync("Pending " + Guid.NewGuid().ToString("n")[..6], [], new Actor("test", null, null, null), CancellationToken.None);
            Assert.True(made.Succeeded, made.ToString());
            account = created!.Id;
        }

        var moving = new List<string> { await VerifiedUserAsync(identity.Services, account, moving: true) };
        var staying = new List<string> { await VerifiedUserAsync(identity.Services, account, moving: false) };
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, identity.BaseAddress, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        var path = $"/admin/accounts/{account}/users";
        await Page.GotoAsync(new Uri(identity.BaseAddress, path).AbsoluteUri);

        // Act: the list again (the first visit warmed what is read once), its statements counted.
        var few = await ListStatementsAsync();

        // Assert: the moving user's row is marked with the address, the other not.
        await Expect(Page.Locator("#users tbody tr")).ToHaveCountAsync(2);
        await Expect(Page.Locator($"#pending-{moving[0]}")).ToHaveTextAsync("pending address: " + await PendingAddressAsync(identity.Services, moving[0]));
        await Expect(Page.Locator($"#pending-{staying[0]}")).ToHaveCountAsync(0);
        await ConsoleChecks.ExpectAccessibleAsync(Page);

        // Act: ten more users, half of them moving; the list again.
        for (var i = 0; i < 10; i++)
        {
            (i % 2 == 0 ? moving : staying).Add(await VerifiedUserAsync(identity.Services, account, moving: i % 2 == 0));
        }

        var many = await ListStatementsAsync();

        // Assert: six marked, none of the others; the page read them with as many statements as it read two rows with.
        await Expect(Page.Locator("#users tbody tr")).ToHaveCountAsync(12);
        await Expect(Page.Locator(".status-pending")).ToHaveCountAsync(6);
        foreach (var id in moving)
        {
            await Expect(Page.Locator($"#pending-{id}")).ToBeVisibleAsync();
        }

        Assert.InRange(few.Count, 1, 20);
        Assert.True(few.Count == many.Count, $"2 rows: {few.Count} statements, 12 rows: {many.Count}:\n{string.Join("\n", few)}\n--\n{string.Join("\n", many)}");
        await ConsoleWorld.ScreenshotAsync(Page, "users-pending");

        // The fewer of two loads: the sign-in cookie's periodic re-check of the administrator adds a read now and then.
        async Task<List<string>> ListStatementsAsync()
        {
            var loads = new List<List<string>>();
            for (var i = 0; i < 2; i++)
            {
                var before = statements.For(path).Count;
                await Page.ReloadAsync();
                loads.Add([.. statements.For(path).Skip(before)]);
            }

            return loads.MinBy(l => l.Count)!;
        }
    }

    /// <summary>A verified member of <paramref name="account"/>; when <paramref name="moving"/>, given a new address by the profile operation.</summary>
    private async Task<string> VerifiedUserAsync(IServiceProvider identity, Guid account, bool moving)
    {
        await using var scope = identity.CreateAsyncScope();
        var operations = scope.ServiceProvider.GetRequiredService<UserOperations>();
        var actor = new Actor("test", null, null, null);
        var created = await operations.CreateAsync(new NewUser(account, $"member-{Guid.NewGuid():n}@example.test", null, AccountRoles.Member, EmailConfirmed: true),
            Regions.UserPassword, actor, CancellationToken.None);
        Assert.True(created.Result.Succeeded, created.Result.ToString());
        if (moving)
        {
            var changed = await operations.ChangeProfileAsync(created.User, new ProfileChange($"moved-{Guid.NewGuid():n}@example.test", null, null), actor, CancellationToken.None);
            Assert.True(changed.Succeeded, changed.ToString());
        }

        return created.User.Id;
    }

    /// <summary>The address the user's live verification link is for: the one they are moving to.</summary>
    private static async Task<string> PendingAddressAsync(IServiceProvider identity, string userId)
    {
        await using var scope = identity.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().UserLinks
            .Where(l => l.UserId == userId && l.EndedAt == null).OrderByDescending(l => l.Id).Select(l => l.Email).FirstAsync();
    }

    private async Task ExpectSignInAsync(string email, bool succeeds)
    {
        var page = await Regions.NewPersonAsync();
        await page.GotoAsync(At(Regions.Identity, LoginPage.Path));
        await new LoginPage(page).SignInAsync(email, PersonPassword);
        if (succeeds)
        {
            await Expect(new HomePage(page).SignedInAs(email)).ToBeVisibleAsync();
        }
        else
        {
            await Expect(new LoginPage(page).Failure).ToBeVisibleAsync();
        }

        await page.Context.CloseAsync();
    }

    private async Task<string> InviteAsync(Guid account, string email)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var created = await scope.ServiceProvider.GetRequiredService<UserOperations>().InviteAsync(
            new NewUser(account, email, null, AccountRoles.Member), new Actor("test", null, null, null), CancellationToken.None);
        Assert.True(created.Result.Succeeded, created.Result.ToString());
        return created.User.Id;
    }

    private async Task<string> UserIdAsync(string email)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync();
    }

    private async Task<UserStatus> StatusAsync(string userId)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.Where(u => u.Id == userId).Select(u => u.Status).SingleAsync();
    }
}
