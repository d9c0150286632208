using Identity.BrowserTests.Infrastructure;
using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests.AdminConsole;

/// <summary>
/// The audit log in the console: newest first, filtered by subject, actor, type and time through the admin API's query;
/// an account's admin sees only that account's entries (another account's subject finds nothing); a malformed time or
/// page link is a 400 page that says which field, never a 500.
/// </summary>
public sealed class ConsoleAuditTests(RegionsFixture regions) : BrowserTest(regions)
{
    private ConsoleLayoutPage Console => new(Page);

    [Fact]
    public async Task AuditLog_AccountAdmin_SeesOwnAccountsEntriesOnly_FiltersWork_MalformedFilterIs400()
    {
        // Arrange: two accounts, each with a user whose creation is audited; A's admin in the console.
        var (accountA, adminA) = await Regions.CreateAccountUserAsync("admin");
        var (accountB, memberB) = await Regions.CreateAccountUserAsync("member");
        string idA, idB;
        await using (var scope = Regions.IdentityServices.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            idA = await db.Users.Where(u => u.Email == adminA).Select(u => u.Id).SingleAsync();
            idB = await db.Users.Where(u => u.Email == memberB).Select(u => u.Id).SingleAsync();
            Assert.True(await db.AuditEntries.AnyAsync(e => e.SubjectId == idA && e.AccountId == accountA));
            Assert.True(await db.AuditEntries.AnyAsync(e => e.SubjectId == idB && e.AccountId == accountB));
        }

        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, adminA, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();

        // Act + assert: the log from the navigation; A's user is in it, B's is not.
        await Console.Navigation.GetByRole(AriaRole.Link, new() { Name = "Audit log" }).ClickAsync();
        await Expect(Console.Heading("Audit log")).ToBeVisibleAsync();
        await Expect(Page.Locator("#audit")).ToContainTextAsync(idA);
        Assert.DoesNotContain(idB, await Page.Locator("#audit").InnerTextAsync(), StringComparison.Ordinal);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "audit");

        // Filtered by B's user: nothing (another account's entries are not this admin's to read).
        await Console.Field("Subject id").FillAsync(idB);
        await Console.Button("Filter").ClickAsync();
        await Expect(Page.Locator("#no-entries")).ToBeVisibleAsync();

        // Filtered by A's user and a time range around now: only entries about that user.
        await Console.Field("Subject id").FillAsync(idA);
        await Console.Field("From (UTC)").FillAsync(DateTimeOffset.UtcNow.AddHours(-1).ToString("O"));
        await Console.Field("To (UTC)").FillAsync(DateTimeOffset.UtcNow.AddHours(1).ToString("O"));
        await Console.Button("Filter").ClickAsync();
        var rows = Page.Locator("#audit tbody tr");
        Assert.True(await rows.CountAsync() >= 1);
        foreach (var row in await rows.AllAsync())
        {
            Assert.Contains(idA, await row.InnerTextAsync(), StringComparison.Ordinal);
        }

        // A time range in the past: nothing.
        await Console.Field("To (UTC)").FillAsync("2001-01-01T00:00:00Z");
        await Console.Button("Filter").ClickAsync();
        await Expect(Page.Locator("#no-entries")).ToBeVisibleAsync();

        // Malformed time and page link: 400, the field named, never a 500.
        var badTime = await Page.GotoAsync(At(Regions.Identity, "/admin/audit?from=yesterday-ish"));
        Assert.Equal(400, badTime!.Status);
        await Expect(Console.Alert).ToContainTextAsync("From");
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        var badCursor = await Page.GotoAsync(At(Regions.Identity, "/admin/audit?before=-3%27%20or%201=1"));
        Assert.Equal(400, badCursor!.Status);
        await Expect(Console.Alert).ToContainTextAsync("start again from the first page");
    }
}
