using Deque.AxeCore.Playwright;

namespace Identity.BrowserTests.Infrastructure;

/// <summary>What every console page is checked for, besides its behaviour.</summary>
public static class ConsoleChecks
{
    /// <summary>axe-core finds no serious or critical violation on the page as it now shows (WCAG 2.2 AA rules included).</summary>
    public static async Task ExpectAccessibleAsync(IPage page)
    {
        var result = await page.RunAxe();
        Assert.NotEmpty(result.Passes); // the engine ran on this page (a CSP blocking it would leave nothing checked)
        var serious = result.Violations.Where(v => v.Impact is "serious" or "critical").ToList();
        Assert.True(serious.Count == 0, $"axe-core on {page.Url}:\n" + string.Join("\n", serious.Select(v =>
            $"{v.Id} ({v.Impact}): {v.Help} at {string.Join(", ", v.Nodes.Select(n => n.Target?.ToString()))}")));
    }

    /// <summary>A new browser context (its own cookies: another person) and its page.</summary>
    public static async Task<IPage> NewPersonAsync(this RegionsFixture regions) => await (await regions.NewContextAsync()).NewPageAsync();
}
