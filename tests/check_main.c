/* check_main.c — one runner for every Check suite of the project. */
#include <check.h>
#include <stdlib.h>

Suite *frontend_suite(void);
Suite *compiler_suite(void);
Suite *runtime_suite(void);
Suite *cnn_suite(void);

int main(void)
{
    SRunner *sr = srunner_create(frontend_suite());
    srunner_add_suite(sr, compiler_suite());
    srunner_add_suite(sr, runtime_suite());
    srunner_add_suite(sr, cnn_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
