using Identity.BrowserTests.Infrastructure;
using Identity.Core.Accounts;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests.AdminConsole;

/// <summary>
/// The console used with the keyboard alone, as WCAG 2.2 asks (2.1.1 keyboard, 2.4.1 bypass blocks, 2.4.7 focus
/// visible, 4.1.3 status messages): the first Tab reaches a visible "Skip to content" link that moves focus to the
/// page's content, every focused control shows an outline, and a refused form is announced (role=alert) with the
/// field marked invalid and described by its message — then the same form is completed with keys only.
/// </summary>
public sealed class ConsoleKeyboardTests(RegionsFixture regions) : BrowserTest(regions)
{
    private ConsoleLayoutPage Console => new(Page);

    [Fact]
    public async Task CreateAccount_KeyboardOnly_SkipLinkFocusVisibleErrorAnnouncedThenCreated()
    {
        // Arrange: a platform administrator signed in to the console, on the "Create account" page.
        var admin = await Regions.CreatePlatformAdminAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Page.GotoAsync(At(Regions.Identity, "/admin/accounts/new"));
        await Expect(Console.Heading("Create account")).ToBeVisibleAsync();

        // Act + assert: the first Tab lands on the skip link, shown on screen; Enter moves focus to the content.
        await Page.Keyboard.PressAsync("Tab");
        var skip = Page.GetByRole(AriaRole.Link, new() { Name = "Skip to content" });
        await Expect(skip).ToBeFocusedAsync();
        var box = await skip.BoundingBoxAsync();
        Assert.True(box is { X: >= 0, Y: >= 0, Width: > 0 }, $"The focused skip link is off screen: {box?.X},{box?.Y}.");
        await AssertFocusOutlineAsync();
        await Page.Keyboard.PressAsync("Enter");
        Assert.Equal("main", await Page.EvaluateAsync<string>("document.activeElement.id"));

        // Tab from the content reaches the Name field (through the back link), with a visible focus outline.
        var name = Console.Field("Name");
        await TabUntilFocusedAsync(name);
        await AssertFocusOutlineAsync();

        // Enter in the empty field submits the form: refused, announced, the field invalid and described by the rule.
        await Page.Keyboard.PressAsync("Enter");
        await Expect(Console.Alert.First).ToBeVisibleAsync();
        await Expect(name).ToHaveAttributeAsync("aria-invalid", "true");
        var describedBy = await name.GetAttributeAsync("aria-describedby");
        Assert.False(string.IsNullOrEmpty(describedBy), "The refused field is not described by its message.");
        await Expect(Page.Locator($"#{describedBy!.Split(' ')[0]}")).ToHaveTextAsync(AccountOperations.NameRule);

        // Keys only again: Tab to the field, type a name, Enter: the account is created and its page says so.
        var accountName = "Keyboard " + Guid.NewGuid().ToString("n")[..6];
        await Page.Keyboard.PressAsync("Tab");
        await TabUntilFocusedAsync(name);
        await Page.Keyboard.TypeAsync(accountName);
        await Page.Keyboard.PressAsync("Enter");
        await Expect(Console.Heading(accountName)).ToBeVisibleAsync();
        await Expect(Console.Notice).ToHaveTextAsync($"{accountName} was created.");
    }

    /// <summary>Presses Tab until <paramref name="target"/> has focus; fails after 40 presses (a keyboard trap or an unreachable control).</summary>
    private async Task TabUntilFocusedAsync(ILocator target)
    {
        for (var presses = 0; presses < 40; presses++)
        {
            if (await target.EvaluateAsync<bool>("e => e === document.activeElement"))
            {
                return;
            }

            await Page.Keyboard.PressAsync("Tab");
        }

        Assert.Fail("The control cannot be reached with Tab.");
    }

    /// <summary>The focused element draws an outline of at least 2 px (WCAG 2.4.7; the console's :focus-visible style).</summary>
    private async Task AssertFocusOutlineAsync()
    {
        var outline = await Page.EvaluateAsync<string[]>(
            "() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]; }");
        Assert.NotEqual("none", outline[0]);
        Assert.True(double.Parse(outline[1].Replace("px", "", StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture) >= 2,
            $"The focus outline is {outline[1]} wide.");
    }
}
