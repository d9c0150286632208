using System.Net;
using System.Net.Http.Json;
using Identity.BrowserTests.Infrastructure;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Policies;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests.AdminConsole;

/// <summary>
/// The console's accounts and policy pages as a platform administrator uses them: every change goes through the
/// operation the admin API calls (checked behind the pages: the account's version and audit entries, with the
/// administrator as actor), refusals come back beside the fields, a stale policy form is refused and shows the
/// difference, and axe-core finds no serious or critical violation on any of the pages.
/// </summary>
public sealed class ConsoleAccountsTests(RegionsFixture regions) : BrowserTest(regions)
{
    private ConsoleLayoutPage Console => new(Page);

    [Fact]
    public async Task Accounts_PlatformAdmin_CreatesAccountInARegion_SetsItsPolicy_SuspendsActivatesAndDeletesIt()
    {
        // Arrange: a region, and a platform administrator signed in to the console (second factor enrolled on the way).
        var region = "c" + Guid.NewGuid().ToString("n")[..8];
        using (var api = await Regions.PlatformAdminAsync())
        {
            (await api.PutAsJsonAsync($"/admin/v1/regions/{region}", new { displayName = "Console " + region })).EnsureSuccessStatusCode();
        }

        var admin = await Regions.CreatePlatformAdminAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        await ConsoleChecks.ExpectAccessibleAsync(Page);

        // Act: creates an account, first without a name (refused beside the field), then named, living in the region.
        await Console.Link("Create account").ClickAsync();
        await Expect(Console.Heading("Create account")).ToBeVisibleAsync();
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await Console.Button("Create account").ClickAsync();
        await Expect(Page.Locator("#err-name")).ToHaveTextAsync(AccountOperations.NameRule);
        await Expect(Console.Field("Name")).ToHaveAttributeAsync("aria-invalid", "true");
        await ConsoleWorld.ScreenshotAsync(Page, "account-create-refused");
        var name = "Contoso " + Guid.NewGuid().ToString("n")[..6];
        await Console.Field("Name").FillAsync(name);
        await Page.GetByLabel($"Console {region} ({region})").CheckAsync();
        await Console.Button("Create account").ClickAsync();

        // Assert: the account's page, with the notice; made by the operation, audited with the administrator as actor.
        await Expect(Console.Heading(name)).ToBeVisibleAsync();
        await Expect(Console.Notice).ToHaveTextAsync($"{name} was created.");
        await Expect(Page.Locator("#account-regions")).ToHaveTextAsync(region);
        var account = await AccountNamedAsync(name);
        var adminId = await UserIdAsync(admin);
        Assert.Equal([region], account.Regions.Select(r => r.RegionCode));
        Assert.Equal(adminId, await ActorOfAsync(account.Id, "account.created"));
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "account");

        // Act: the policy: a too-short minimum length is refused beside the field with the API's message.
        await Console.Link("Policy").ClickAsync();
        await Expect(Console.Heading("Policy")).ToBeVisibleAsync();
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await Console.Field("Minimum length").FillAsync("4");
        await Console.Button("Preview").ClickAsync();
        await Expect(Page.Locator("#err-minimum-length")).ToContainTextAsync("8");
        await Expect(Page.Locator("#policy-errors")).ToBeVisibleAsync();

        // Act: a valid change, previewed (before → after, nothing written yet), then saved.
        await Console.Field("Requirement").SelectOptionAsync("requiredForEveryone");
        await Console.Field("Minimum length").FillAsync("14");
        await Console.Field("IP allow-list").FillAsync("10.0.0.0/8\n2001:db8::/32");
        await Console.Button("Preview").ClickAsync();
        var preview = Page.Locator("#preview");
        await Expect(preview.Locator("tr", new() { HasText = "Minimum password length" })).ToContainTextAsync("1214");
        await Expect(preview.Locator("tr", new() { HasText = "MFA requirement" })).ToContainTextAsync("Required for everyone");
        await Expect(preview.Locator("tr", new() { HasText = "IP allow-list" })).ToContainTextAsync("10.0.0.0/8, 2001:db8::/32");
        Assert.Equal(account.Version, (await AccountNamedAsync(name)).Version);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "account-policy-preview");
        await Console.Button("Save").ClickAsync();

        // Assert: saved through the operation (new version, settings, audit entry by the administrator).
        await Expect(Console.Notice).ToHaveTextAsync($"The policy of {name} was saved.");
        var saved = await AccountNamedAsync(name);
        var policy = AccountPolicy.Parse(saved.Settings, out _)!;
        Assert.Equal(MfaRequirement.RequiredForEveryone, policy.Mfa.Requirement);
        Assert.Equal(14, policy.Password.MinimumLength);
        Assert.Equal(["10.0.0.0/8", "2001:db8::/32"], policy.IpAllowList.Ranges);
        Assert.True(saved.Version > account.Version);
        Assert.Equal(adminId, await ActorOfAsync(account.Id, "account.settings_changed"));
        await Expect(Console.Field("Minimum length")).ToHaveValueAsync("14");

        // Act + Assert: suspended, then activated again.
        await Page.GotoAsync(At(Regions.Identity, $"/admin/accounts/{account.Id}"));
        await Console.Button("Suspend account").ClickAsync();
        await Expect(Page.Locator("#account-status")).ToHaveTextAsync("suspended");
        Assert.Equal(AccountStatus.Suspended, (await AccountNamedAsync(name)).Status);
        await Console.Button("Activate account").ClickAsync();
        await Expect(Page.Locator("#account-status")).ToHaveTextAsync("active");
        Assert.Equal(adminId, await ActorOfAsync(account.Id, "account.suspended"));

        // Act + Assert: the region removed from the account.
        await Page.GetByLabel($"Console {region} ({region})").UncheckAsync();
        await Console.Button("Save regions").ClickAsync();
        await Expect(Page.Locator("#account-regions")).ToHaveTextAsync("none");
        Assert.Equal(adminId, await ActorOfAsync(account.Id, "account.region_disabled"));

        // Act + Assert: renamed (the account's version grows; audited by the administrator).
        var renamed = name + " Ltd";
        await Console.Field("Account name").FillAsync(renamed);
        await Console.Button("Rename").ClickAsync();
        await Expect(Console.Notice).ToHaveTextAsync($"The account is now named {renamed}.");
        await Expect(Console.Heading(renamed)).ToBeVisibleAsync();
        Assert.Equal(adminId, await ActorOfAsync(account.Id, "account.updated"));
        name = renamed;

        // Act: delete, first with a wrong name typed (refused), then with the name.
        await Console.Link("Delete this account and all its users…").ClickAsync();
        await Expect(Console.Heading($"Delete {name}")).ToBeVisibleAsync();
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await Console.Field($"Type {name} to confirm").FillAsync(name + " typo");
        await Console.Button("Delete account").ClickAsync();
        await Expect(Page.Locator("#err-confirmation")).ToBeVisibleAsync();
        Assert.NotNull(await FindAccountAsync(name));
        await ConsoleWorld.ScreenshotAsync(Page, "account-delete");
        await Console.Field($"Type {name} to confirm").FillAsync(name);
        await Console.Button("Delete account").ClickAsync();

        // Assert: back at the list, the account gone, its deletion audited by the administrator.
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        await Expect(Console.Notice).ToHaveTextAsync($"{name} was deleted, with its users.");
        Assert.Null(await FindAccountAsync(name));
        Assert.Equal(adminId, await ActorOfAsync(account.Id, "account.deleted"));

        // The list's search finds by any part of the name, in any case.
        var other = await Regions.CreateAccountUserAsync("member", accountName: "Searchable " + Guid.NewGuid().ToString("n")[..6]);
        await Console.Field("Search by name").FillAsync("SEARCHABLE");
        await Console.Button("Search").ClickAsync();
        await Expect(Page.Locator($"#accounts a[href='/admin/accounts/{other.Account}']")).ToBeVisibleAsync();
        await Expect(Page.Locator("#accounts tbody tr").Filter(new() { HasNotText = "Searchable" })).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task Policy_TwoAdminsEditAtOnce_TheSecondSaveIsRefusedAndShowsTheDifference()
    {
        // Arrange: an account; two platform administrators, each in their own browser, both open its policy form.
        var (accountId, _) = await Regions.CreateAccountUserAsync("member");
        var first = await Regions.CreatePlatformAdminAsync();
        var second = await Regions.CreatePlatformAdminAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, first, Regions.UserPassword);
        await using var otherBrowser = await Regions.NewContextAsync();
        var otherPage = await otherBrowser.NewPageAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(otherPage, Regions.Identity, second, Regions.UserPassword);
        var policyPath = At(Regions.Identity, $"/admin/accounts/{accountId}/policy");
        await Page.GotoAsync(policyPath);
        await otherPage.GotoAsync(policyPath);
        var other = new ConsoleLayoutPage(otherPage);

        // Act: the first saves a lockout change; the second, from the form read before, a password change.
        await Console.Field("Failed attempts before lockout").FillAsync("7");
        await Console.Button("Save").ClickAsync();
        await Expect(Console.Notice).ToContainTextAsync("was saved");
        await other.Field("Minimum length").FillAsync("16");
        var refused = await otherPage.RunAndWaitForResponseAsync(() => other.Button("Save").ClickAsync(),
            r => r.Request.Method == "POST" && r.Url.Contains("/policy", StringComparison.Ordinal));

        // Assert: refused (409), announced, showing what the other admin changed and what was not saved; the form
        // now holds the current values, and the database the first admin's change only.
        Assert.Equal((int)HttpStatusCode.Conflict, refused.Status);
        var stale = otherPage.Locator("#stale");
        await Expect(stale).ToHaveAttributeAsync("role", "alert");
        await Expect(stale.Locator("tr", new() { HasText = "Lockout after failed attempts" }).First).ToContainTextAsync("57");
        await Expect(stale.Locator("tr", new() { HasText = "Minimum password length" })).ToContainTextAsync("1216");
        await Expect(other.Field("Failed attempts before lockout")).ToHaveValueAsync("7");
        await Expect(other.Field("Minimum length")).ToHaveValueAsync("12");
        var policy = AccountPolicy.Parse((await AccountAsync(accountId)).Settings, out _)!;
        Assert.Equal((7, 12), (policy.Lockout.MaxFailedAttempts, policy.Password.MinimumLength));
        await ConsoleChecks.ExpectAccessibleAsync(otherPage);
        await ConsoleWorld.ScreenshotAsync(otherPage, "account-policy-stale");

        // The account's name form holds its version too: a rename from a page read before the change is refused.
        var accountPage = await otherBrowser.NewPageAsync();
        await accountPage.GotoAsync(At(Regions.Identity, $"/admin/accounts/{accountId}"));
        await Console.Field("Failed attempts before lockout").FillAsync("8");
        await Console.Button("Save").ClickAsync();
        await Expect(Console.Notice).ToContainTextAsync("was saved");
        await accountPage.GetByLabel("Account name", new() { Exact = true }).FillAsync("Renamed late");
        await accountPage.GetByRole(AriaRole.Button, new() { Name = "Rename", Exact = true }).ClickAsync();
        await Expect(accountPage.Locator("#stale tr", new() { HasText = "Policy version" })).ToBeVisibleAsync();
        await Expect(accountPage.Locator("#stale tr", new() { HasText = "Name" })).ToContainTextAsync("Renamed late");
        Assert.NotEqual("Renamed late", (await AccountAsync(accountId)).Name);
        await accountPage.CloseAsync();

        // Act + Assert: made again on the current version, the second admin's change is saved on top of the first's.
        await otherPage.GotoAsync(policyPath);
        await other.Field("Minimum length").FillAsync("16");
        await other.Button("Save").ClickAsync();
        await Expect(other.Notice).ToContainTextAsync("was saved");
        policy = AccountPolicy.Parse((await AccountAsync(accountId)).Settings, out _)!;
        Assert.Equal((8, 16), (policy.Lockout.MaxFailedAttempts, policy.Password.MinimumLength));
    }

    [Fact]
    public async Task Forms_WithoutOrWithAForgedAntiforgeryToken_AreRefusedWith400_NothingIsCreated()
    {
        // Arrange: a platform administrator signed in to the console.
        var admin = await Regions.CreatePlatformAdminAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        var name = "Forged " + Guid.NewGuid().ToString("n")[..6];

        foreach (var token in new string?[] { null, "CfDJ8forged-token-value" })
        {
            // Act: the create form posted with the session's cookies but no token, or a made-up one.
            var form = Page.APIRequest.CreateFormData();
            form.Set("Name", name);
            if (token is not null)
            {
                form.Set("__RequestVerificationToken", token);
            }

            var response = await Page.APIRequest.PostAsync(At(Regions.Identity, "/admin/accounts/new"), new() { Form = form, MaxRedirects = 0 });

            // Assert: 400 with the console's page saying why, never a 500; no account.
            Assert.Equal((int)HttpStatusCode.BadRequest, response.Status);
            Assert.Contains("Request refused", await response.TextAsync(), StringComparison.Ordinal);
            Assert.Null(await FindAccountAsync(name));
        }
    }

    private async Task<Account> AccountNamedAsync(string name) => await FindAccountAsync(name) ?? throw new InvalidOperationException($"No account {name}.");

    private async Task<Account?> FindAccountAsync(string name)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Accounts.AsNoTracking().Include(a => a.Regions)
            .SingleOrDefaultAsync(a => a.Name == name);
    }

    private async Task<Account> AccountAsync(Guid id)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Accounts.AsNoTracking().SingleAsync(a => a.Id == id);
    }

    private async Task<string> UserIdAsync(string email)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync();
    }

    /// <summary>Who the latest audit entry of <paramref name="type"/> about the account names as its actor.</summary>
    private async Task<string?> ActorOfAsync(Guid accountId, string type)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var subject = accountId.ToString();
        var entries = await db.AuditEntries.AsNoTracking().Where(e => e.EventType == type && e.SubjectId == subject).ToListAsync();
        return entries.OrderBy(e => e.Id).LastOrDefault()?.ActorId;
    }
}
