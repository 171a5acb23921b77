/** Exit codes scripts can rely on. */
export const EXIT_OK = 0;
/** The cluster answered badly or could not be reached. */
export const EXIT_FAILURE = 1;
/** Bad usage or an invalid config: nothing was changed. */
export const EXIT_USAGE = 2;
