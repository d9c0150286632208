using System.Net;
using Identity.BrowserTests.Infrastructure;
using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Server.AdminConsole.Pages.Regions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests.AdminConsole;

/// <summary>
/// Regions in the console: every admin sees them and which accounts live there (an account admin only their own); a
/// platform administrator creates, renames and deletes an unused one (after typing its code) through the admin API's
/// operation, audited with the admin as actor, and follows a region's backlog to the outbox. A wrongly typed code deletes
/// nothing (400); a region in use is not deleted (409); a bad code is refused beside the field (400); an unknown region
/// 404; an account admin's post 403; a forged form 400.
/// </summary>
public sealed class ConsoleRegionsTests(RegionsFixture regions) : BrowserTest(regions)
{
    private ConsoleLayoutPage Console => new(Page);

    [Fact]
    public async Task Regions_PlatformAdminCreatesRenamesDeletes_InUseRefused_AccountsAndBacklogShown_Audited()
    {
        // Arrange: a platform admin in the console.
        var admin = await Regions.CreatePlatformAdminAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        var code = "rg-" + Guid.NewGuid().ToString("n")[..8];

        // Act: the regions page from the navigation; a region created with a code that breaks the rule, then a good one.
        await Console.Navigation.GetByRole(AriaRole.Link, new() { Name = "Regions" }).ClickAsync();
        await Expect(Console.Heading("Regions")).ToBeVisibleAsync();
        await Console.Field("Code").FillAsync("Not A Code");
        await Console.Field("Display name").FillAsync("Test region");
        var bad = await Page.RunAndWaitForResponseAsync(() => Page.Locator("#create-region").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, bad.Status);
        await Expect(Page.Locator("#err-new-code")).ToContainTextAsync("2 to 16 lowercase letters");
        await Expect(Console.Alert).ToContainTextAsync("2 to 16 lowercase letters");
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await Console.Field("Code").FillAsync(code);
        await Page.Locator("#create-region").ClickAsync();

        // Assert: created, listed with no account and nothing waiting.
        await Expect(Console.Notice).ToContainTextAsync($"The region {code} (Test region) was created.");
        var row = Page.Locator($"#region-{code}");
        await Expect(row).ToContainTextAsync("Test region");
        await Expect(row.Locator(".region-accounts")).ToHaveTextAsync("none");

        // The same code again: 409, not a silent rename.
        await Console.Field("Code").FillAsync(code);
        await Console.Field("Display name").FillAsync("Another name");
        var again = await Page.RunAndWaitForResponseAsync(() => Page.Locator("#create-region").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.Conflict, again.Status);
        await Expect(Page.Locator("#err-new-code")).ToContainTextAsync("exists already");
        await Expect(row).ToContainTextAsync("Test region");

        // Act: rename it.
        await Page.GotoAsync(At(Regions.Identity, "/admin/regions"));
        await Page.GetByLabel($"New name of {code}").FillAsync("Renamed region");
        await Page.GetByRole(AriaRole.Button, new() { Name = $"Rename {code}", Exact = true }).ClickAsync();
        await Expect(Console.Notice).ToContainTextAsync($"The region {code} is now called Renamed region.");
        await Expect(row).ToContainTextAsync("Renamed region");

        // An account enabled there (its creation's event waits in the outbox for the region): listed, the backlog linked.
        var accountName = "Regional " + Guid.NewGuid().ToString("n")[..6];
        await CreateAccountAsync(accountName, code);
        await Page.ReloadAsync();
        await Expect(row.Locator(".region-accounts")).ToContainTextAsync("1:");
        await Expect(row.GetByRole(AriaRole.Link, new() { Name = accountName })).ToBeVisibleAsync();
        await Expect(row.Locator($"#delete-{code}")).ToHaveCountAsync(0);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "regions");
        var backlog = row.Locator(".region-outbox a");
        await Expect(backlog).ToContainTextAsync("waiting");
        await backlog.ClickAsync();
        await Expect(Console.Heading("Outbox")).ToBeVisibleAsync();
        await Expect(Page.Locator($"#region-{code}")).ToBeVisibleAsync();

        // The region in use: its delete page says so and has no form; a post anyway (a valid anti-forgery token, the
        // code typed) is refused 409 by the operation, and the region stays.
        var spare = "rg-" + Guid.NewGuid().ToString("n")[..8];
        await Page.GotoAsync(At(Regions.Identity, $"/admin/regions/{code}/delete"));
        await Expect(Page.Locator("#in-use")).ToContainTextAsync("1 account(s) live in " + code);
        await Expect(Page.Locator("#confirmation")).ToHaveCountAsync(0);
        var token = await Page.Locator("input[name=__RequestVerificationToken]").First.InputValueAsync();
        var inUse = await PostAsync(At(Regions.Identity, $"/admin/regions/{code}/delete"), null, new() { ["Confirmation"] = code }, token);
        Assert.Equal((int)HttpStatusCode.Conflict, inUse.Status);
        Assert.Contains(RegionOperations.StillInUse, WebUtility.HtmlDecode(await inUse.TextAsync()), StringComparison.Ordinal);

        // Act: an unused region deleted from its row, the code typed wrong first.
        await Page.GotoAsync(At(Regions.Identity, "/admin/regions"));
        await Expect(row).ToBeVisibleAsync();
        await Console.Field("Code").FillAsync(spare);
        await Console.Field("Display name").FillAsync("Spare");
        await Page.Locator("#create-region").ClickAsync();
        await Expect(Console.Notice).ToContainTextAsync(spare);
        await Page.GetByRole(AriaRole.Link, new() { Name = $"Delete… region {spare}", Exact = true }).ClickAsync();
        await Expect(Console.Heading($"Delete region {spare}")).ToBeVisibleAsync();
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await Console.Field($"Type {spare} to confirm").FillAsync(code);
        var mistyped = await Page.RunAndWaitForResponseAsync(() => Page.Locator("#delete").ClickAsync(), r => r.Request.Method == "POST");

        // Assert: 400, the message beside the field and announced; neither region deleted.
        Assert.Equal((int)HttpStatusCode.BadRequest, mistyped.Status);
        await Expect(Page.Locator("#err-confirmation")).ToContainTextAsync(DeleteRegionModel.MismatchMessage);
        await Expect(Console.Alert).ToContainTextAsync("The region was not deleted.");
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "region-delete");
        Assert.Equal(2, await RegionCountAsync(code, spare));

        // Act: the code typed as shown.
        await Console.Field($"Type {spare} to confirm").FillAsync(spare);
        await Page.Locator("#delete").ClickAsync();

        // Assert: back at the list, the spare region gone, the one in use kept.
        await Expect(Console.Notice).ToContainTextAsync($"The region {spare} was deleted.");
        await Expect(Page.Locator($"#region-{spare}")).ToHaveCountAsync(0);
        await Expect(row).ToBeVisibleAsync();
        Assert.Equal(1, await RegionCountAsync(code, spare));

        // Audited with the admin as actor.
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var adminId = await db.Users.Where(u => u.Email == admin).Select(u => u.Id).SingleAsync();
        var entries = await db.AuditEntries.Where(e => e.SubjectId == code || e.SubjectId == spare).ToListAsync();
        Assert.Contains(entries, e => e.EventType == "region.created" && e.SubjectId == code && e.ActorId == adminId);
        Assert.Contains(entries, e => e.EventType == "region.updated" && e.SubjectId == code && e.ActorId == adminId);
        Assert.Contains(entries, e => e.EventType == "region.deleted" && e.SubjectId == spare && e.ActorId == adminId);
        Assert.DoesNotContain(entries, e => e.EventType == "region.deleted" && e.SubjectId == code);
    }

    [Fact]
    public async Task Regions_AccountAdminSeesOwnAccountOnly_ChangesRefused_MalformedFormsNever500()
    {
        // Arrange: a region with two accounts; the admin of one of them in the console.
        var code = "rg-" + Guid.NewGuid().ToString("n")[..8];
        await using (var scope = Regions.IdentityServices.CreateAsyncScope())
        {
            var (put, _) = await scope.ServiceProvider.GetRequiredService<RegionOperations>()
                .PutAsync(code, "Shared region", new Actor("test", null, null, null), CancellationToken.None);
            Assert.True(put.Succeeded, put.ToString());
        }

        var mine = "Mine " + Guid.NewGuid().ToString("n")[..6];
        var theirs = "Theirs " + Guid.NewGuid().ToString("n")[..6];
        var (accountId, accountAdmin) = await Regions.CreateAccountUserAsync("admin", mine);
        await CreateAccountAsync(theirs, code);
        await using (var scope = Regions.IdentityServices.CreateAsyncScope())
        {
            var operations = scope.ServiceProvider.GetRequiredService<AccountOperations>();
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            var account = await db.Accounts.Include(a => a.Regions).SingleAsync(a => a.Id == accountId);
            var moved = await operations.EnableRegionAsync(account, code, new Actor("test", null, null, null), CancellationToken.None);
            Assert.True(moved.Succeeded, moved.ToString());
        }

        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, accountAdmin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();

        // Act: the regions page.
        await Console.Navigation.GetByRole(AriaRole.Link, new() { Name = "Regions" }).ClickAsync();

        // Assert: their own account in the region, not the other one; no backlog, no forms.
        var row = Page.Locator($"#region-{code}");
        await Expect(row.Locator(".region-accounts")).ToHaveTextAsync(mine);
        Assert.DoesNotContain(theirs, await Page.ContentAsync(), StringComparison.Ordinal);
        await Expect(Page.Locator(".region-outbox")).ToHaveCountAsync(0);
        await Expect(Page.Locator("#create-region")).ToHaveCountAsync(0);
        await ConsoleChecks.ExpectAccessibleAsync(Page);

        // Their posts, with a valid anti-forgery token (the sign-out form's): 403, nothing changed.
        var token = await Page.Locator("input[name=__RequestVerificationToken]").First.InputValueAsync();
        var regionsPage = At(Regions.Identity, "/admin/regions");
        foreach (var (handler, fields) in new[]
        {
            ("Create", new Dictionary<string, string> { ["NewCode"] = "rg-" + Guid.NewGuid().ToString("n")[..8], ["NewDisplayName"] = "Mine" }),
            ("Rename", new Dictionary<string, string> { ["code"] = code, ["displayName"] = "Taken over" }),
        })
        {
            var response = await PostAsync(regionsPage, handler, fields, token);
            Assert.True(response.Status == (int)HttpStatusCode.Forbidden, $"{handler}: {response.Status} {await response.TextAsync()}");
        }

        var deletePage = At(Regions.Identity, $"/admin/regions/{code}/delete");
        Assert.Equal((int)HttpStatusCode.Forbidden, (await Page.GotoAsync(deletePage))!.Status);
        Assert.Equal((int)HttpStatusCode.Forbidden, (await PostAsync(deletePage, null, new() { ["Confirmation"] = code }, token)).Status);

        await Page.GotoAsync(regionsPage);
        await Expect(row).ToContainTextAsync("Shared region");

        // A platform admin's malformed forms: an unknown or over-long code 404, a blank name 400, a forged token 400.
        var admin = await Regions.CreatePlatformAdminAsync();
        var other = await Regions.NewPersonAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(other, Regions.Identity, admin, Regions.UserPassword);
        await Expect(new ConsoleLayoutPage(other).Heading("Accounts")).ToBeVisibleAsync();
        await other.GotoAsync(regionsPage);
        var adminToken = await other.Locator("input[name=__RequestVerificationToken]").First.InputValueAsync();
        foreach (var (handler, fields, status) in new[]
        {
            ("Rename", new Dictionary<string, string> { ["code"] = "no-such-region", ["displayName"] = "X" }, HttpStatusCode.NotFound),
            ("Rename", new Dictionary<string, string> { ["code"] = code, ["displayName"] = "   " }, HttpStatusCode.BadRequest),
            ("Create", new Dictionary<string, string> { ["NewCode"] = new string('a', 300), ["NewDisplayName"] = "Long" }, HttpStatusCode.BadRequest),
        })
        {
            var response = await PostAsync(other, regionsPage, handler, fields, adminToken);
            Assert.Equal((int)status, response.Status);
        }

        foreach (var unknown in new[] { "no-such-region", new string('x', 300), "%20" })
        {
            var response = await PostAsync(other, At(Regions.Identity, $"/admin/regions/{unknown}/delete"), null, new() { ["Confirmation"] = unknown }, adminToken);
            Assert.Equal((int)HttpStatusCode.NotFound, response.Status);
        }

        foreach (var forged in new string?[] { null, "CfDJ8forged-token-value" })
        {
            var deleted = await PostAsync(other, deletePage, null, new() { ["Confirmation"] = code }, forged);
            Assert.Equal((int)HttpStatusCode.BadRequest, deleted.Status);
            var response = await PostAsync(other, regionsPage, "Rename", new() { ["code"] = code, ["displayName"] = "Forged" }, forged);
            Assert.Equal((int)HttpStatusCode.BadRequest, response.Status);
            Assert.Contains("Request refused", await response.TextAsync(), StringComparison.Ordinal);
        }

        await other.GotoAsync(regionsPage);
        await Expect(other.Locator($"#region-{code}")).ToContainTextAsync("Shared region");
        await Expect(other.Locator($"#region-{code} .region-accounts")).ToContainTextAsync("2:");
    }

    private Task<IAPIResponse> PostAsync(string url, string? handler, Dictionary<string, string> fields, string? token) =>
        PostAsync(Page, url, handler, fields, token);

    private static async Task<IAPIResponse> PostAsync(IPage page, string url, string? handler, Dictionary<string, string> fields, string? token)
    {
        var form = page.APIRequest.CreateFormData();
        foreach (var (name, value) in fields)
        {
            form.Set(name, value);
        }

        if (token is not null)
        {
            form.Set("__RequestVerificationToken", token);
        }

        return await page.APIRequest.PostAsync(handler is null ? url : url + "?handler=" + handler, new() { Form = form, MaxRedirects = 0 });
    }

    /// <summary>How many of <paramref name="codes"/> exist as regions.</summary>
    private async Task<int> RegionCountAsync(params string[] codes)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Regions.CountAsync(r => codes.Contains(r.Code));
    }

    /// <summary>An account enabled in <paramref name="region"/>, through the account operations (its event into the outbox).</summary>
    private async Task CreateAccountAsync(string name, string region)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var (made, _) = await scope.ServiceProvider.GetRequiredService<AccountOperations>()
            .CreateAsync(name, [region], new Actor("test", null, null, null), CancellationToken.None);
        Assert.True(made.Succeeded, made.ToString());
    }
}
